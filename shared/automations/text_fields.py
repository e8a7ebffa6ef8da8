"""Text with fields: `New invoice from {{ trigger.email.from }}: {{ steps.2.text }}`.

A small substitution language of Hapex's own, with no logic at all: a text is literal
characters and field references, nothing else (no filters, no expressions, no loops), parsed
once into segments. A reference names the trigger's fields or an earlier step's output
(steps are numbered from 1, as the builder shows them) and may go into nested fields and list
items (`steps.1.messages.1.subject` is the first message's subject). `\\{{` writes a literal
`{{`. References are checked against the capability output schemas when the automation is
saved; at run time each is replaced by the value it names, in one pass, and a value is only
ever data: what a provider returned is inserted as is and never read as a template again.
Sizes are bounded: the text, the number of references, each inserted value and the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields

MAX_TEXT_CHARS = 50_000
MAX_REFERENCES = 50
MAX_VALUE_CHARS = 20_000
MAX_RENDERED_CHARS = 100_000
# What every text of one step input adds up to once filled in (sheet rows, a webhook's payload).
MAX_VALUE_RENDERED_CHARS = 1_000_000
MAX_DEPTH = 6
TRUNCATED = "…"

_OPEN = "{{"
_CLOSE = "}}"
_ESCAPED_OPEN = "\\{{"
_SEGMENT = re.compile(r"^(?:[a-z_][a-z0-9_]{0,40}|\d{1,3})$")
HOW_TO_WRITE = "A field looks like {{ steps.1.text }} or {{ trigger.email.from }}; write \\{{ for a literal {{."


class TextFieldError(ValueError):
    """A text's fields cannot be read or do not exist; the message says which and how to fix it."""


@dataclass(frozen=True)
class FieldReference:
    """One `{{ ... }}`: where its value comes from (the trigger or step `step`) and the path inside it."""

    source: str  # "trigger" or "steps"
    step: int | None  # the step's number, from 1, for "steps"
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        """The reference without braces: trigger.email.from, steps.2.text."""
        head = "trigger" if self.source == "trigger" else f"steps.{self.step}"
        return ".".join((head, *self.path))

    @property
    def written(self) -> str:
        return "{{ " + self.name + " }}"


@dataclass(frozen=True)
class TextWithFields:
    """A parsed text: literal strings and references, in order."""

    segments: tuple[str | FieldReference, ...]

    @property
    def references(self) -> list[FieldReference]:
        return [s for s in self.segments if isinstance(s, FieldReference)]


def has_fields(value: Any) -> bool:
    """Whether a step input value (a string, or strings inside lists and objects) holds a `{{`."""
    if isinstance(value, str):
        return _OPEN in value
    if isinstance(value, Mapping):
        return any(has_fields(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_fields(v) for v in value)
    return False


def parse(text: str) -> TextWithFields:
    """The text's segments, or TextFieldError saying what is wrong and how to write it."""
    if len(text) > MAX_TEXT_CHARS:
        raise TextFieldError(f"A text with fields is at most {MAX_TEXT_CHARS} characters.")
    segments: list[str | FieldReference] = []
    literal: list[str] = []
    position = 0
    while True:
        found = text.find(_OPEN, position)
        if found < 0:
            literal.append(text[position:])
            break
        if found > 0 and text[found - 1] == "\\":
            literal.append(text[position:found - 1] + _OPEN)
            position = found + len(_OPEN)
            continue
        literal.append(text[position:found])
        end = text.find(_CLOSE, found + len(_OPEN))
        if end < 0:
            raise TextFieldError(f"A {{{{ has no closing }}}}. {HOW_TO_WRITE}")
        segments.append("".join(literal))
        literal = []
        segments.append(_reference(text[found + len(_OPEN):end]))
        position = end + len(_CLOSE)
    segments.append("".join(literal))
    parsed = TextWithFields(tuple(s for s in segments if s != ""))
    if len(parsed.references) > MAX_REFERENCES:
        raise TextFieldError(f"A text may use at most {MAX_REFERENCES} fields.")
    return parsed


def _reference(inner: str) -> FieldReference:
    written = inner.strip()
    shown = "{{ " + written[:60] + " }}"
    parts = written.split(".") if written else []
    if not parts or len(parts) > MAX_DEPTH + 2 or not all(_SEGMENT.match(p) for p in parts):
        raise TextFieldError(f"{shown} is not a field. {HOW_TO_WRITE}")
    if parts[0] == "trigger":
        if len(parts) < 2:
            raise TextFieldError(f"{shown} names no field of the trigger, like {{{{ trigger.email.from }}}}.")
        return FieldReference("trigger", None, tuple(parts[1:]))
    if parts[0] == "steps" and len(parts) > 1 and parts[1] == "removed":
        raise TextFieldError(f"{shown} was a field of a step that has been removed; choose another field.")
    if parts[0] == "steps":
        if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) < 1:
            raise TextFieldError(f"{shown}: after steps comes the step's number (from 1) and its field, "
                                 "like {{ steps.1.text }}.")
        return FieldReference("steps", int(parts[1]), tuple(parts[2:]))
    raise TextFieldError(f"{shown} must start with trigger or steps. {HOW_TO_WRITE}")


# --- checking references against output schemas ------------------------------------------


@dataclass(frozen=True)
class AvailableField:
    """A field a step may insert, with its type in words, for the builder's picker and messages."""

    written: str
    label: str
    type: str

    @property
    def path(self) -> str:
        """The reference without its braces, as the builder's insert button posts it."""
        return self.written[3:-3]


def _type_words(f: fields.Field[Any]) -> str:
    if isinstance(f, fields.List):
        return "list"
    if isinstance(f, fields.Nested | fields.Dict):
        return "object"
    if isinstance(f, fields.Integer | fields.Float | fields.Decimal):
        return "number"
    if isinstance(f, fields.Boolean):
        return "yes or no"
    if isinstance(f, fields.DateTime):
        return "date and time"
    if isinstance(f, fields.String):
        return "text"
    return "value"


def _field_named(schema: Schema, name: str) -> fields.Field[Any] | None:
    for attribute, f in schema.fields.items():
        if (f.data_key or attribute) == name:
            return f
    return None


def field_names(schema: Schema) -> list[str]:
    return [f.data_key or attribute for attribute, f in schema.fields.items()]


def check_path(schema: Schema, path: Sequence[str], *, dict_keys: Sequence[str] = (), root: str = "it") -> str | None:
    """None when `path` exists in the output schema, else what is wrong, in words that say how to fix it.

    An object without a fixed shape (fields.Dict) accepts any key, or, when `dict_keys` lists the keys
    the earlier step was asked for (extract's fields), one of those."""
    current: fields.Field[Any] | Schema = schema
    walked: list[str] = []
    for part in path:
        if isinstance(current, Schema):
            found = _field_named(current, part)
            if found is None:
                where = ".".join(walked) or root
                return f"{where} has no field {part}; its fields are {', '.join(field_names(current))}."
            current = found
        elif isinstance(current, fields.List):
            if not part.isdigit() or int(part) < 1:
                return f"{'.'.join(walked)} is a list: next comes an item's number, from 1 (like .1 for the first)."
            current = current.inner
        elif isinstance(current, fields.Nested):
            nested = current.schema
            found = _field_named(nested, part)
            if found is None:
                return f"{'.'.join(walked)} has no field {part}; its fields are {', '.join(field_names(nested))}."
            current = found
        elif isinstance(current, fields.Dict):
            if dict_keys and part not in dict_keys:
                return f"{'.'.join(walked)} has no field {part}; its fields are {', '.join(dict_keys)}."
            current = fields.Raw()
        else:
            return f"{'.'.join(walked)} is {_type_words(current)}, with nothing inside it."
        walked.append(part)
    return None


def fields_of(schema: Schema, head: str, label: str, *, dict_keys: Sequence[str] = (),
              depth: int = 0) -> list[AvailableField]:
    """Every field under an output schema, as written in text, with a label and its type."""
    result = []
    for attribute, f in schema.fields.items():
        name = f.data_key or attribute
        written = f"{head}.{name}"
        words = name.replace("_", " ")
        result.append(AvailableField("{{ " + written + " }}", f"{label}: {words}", _type_words(f)))
        if depth >= 2:
            continue
        inner = f.inner if isinstance(f, fields.List) else None
        if isinstance(inner, fields.Nested):
            for sub in fields_of(inner.schema, f"{written}.1", f"{label}: first of {words}", depth=depth + 1):
                result.append(sub)
        elif isinstance(f, fields.Nested):
            result += fields_of(f.schema, written, f"{label}: {words}", depth=depth + 1)
        elif isinstance(f, fields.Dict):
            for key in dict_keys:
                result.append(AvailableField("{{ " + f"{written}.{key}" + " }}", f"{label}: {key}", "value"))
    return result


# --- rendering ------------------------------------------------------------------------------


def _lookup(value: Any, path: Sequence[str]) -> Any:
    for part in path:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit():
            position = int(part) - 1
            value = value[position] if 0 <= position < len(value) else None
        else:
            return None
    return value


def as_text(value: Any) -> str:
    """A value as inserted into text: scalars as written, a list of scalars joined by commas, else JSON."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                                  for v in value):
        text = ", ".join(str(v) for v in value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS - len(TRUNCATED)] + TRUNCATED
    return text


def render(parsed: TextWithFields, *, trigger: Mapping[str, Any], outputs: Sequence[Mapping[str, Any]]) -> str:
    """The text with each reference replaced by its value, once; a missing value is empty."""
    pieces: list[str] = []
    size = 0
    for segment in parsed.segments:
        if isinstance(segment, str):
            piece = segment
        elif segment.source == "trigger":
            piece = as_text(_lookup(trigger, segment.path))
        else:
            assert segment.step is not None
            source = outputs[segment.step - 1] if segment.step <= len(outputs) else {}
            piece = as_text(_lookup(source, segment.path))
        size += len(piece)
        if size > MAX_RENDERED_CHARS:
            pieces.append(piece[:len(piece) - (size - MAX_RENDERED_CHARS)])
            break
        pieces.append(piece)
    return "".join(pieces)


def render_value(value: Any, *, trigger: Mapping[str, Any], outputs: Sequence[Mapping[str, Any]]) -> Any:
    """A step input value with every string's fields filled in (inside lists and objects too).

    Each text is bounded (MAX_RENDERED_CHARS), and so is what all of them add up to in one value
    (MAX_VALUE_RENDERED_CHARS): a thousand sheet cells or webhook keys each naming a long earlier
    output would otherwise fill a worker's memory. Beyond it the value is TextFieldError."""
    budget = [MAX_VALUE_RENDERED_CHARS]
    return _render_within(value, trigger, outputs, budget)


def _render_within(value: Any, trigger: Mapping[str, Any], outputs: Sequence[Mapping[str, Any]],
                   budget: list[int]) -> Any:
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        text = render(parse(value), trigger=trigger, outputs=outputs)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise TextFieldError(f"Filled in, this input would be more than {MAX_VALUE_RENDERED_CHARS:,} characters; "
                                 "use fewer or shorter fields.")
        return text
    if isinstance(value, Mapping):
        return {k: _render_within(v, trigger, outputs, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render_within(v, trigger, outputs, budget) for v in value]
    return value


def render_samples(value: Any, samples: Mapping[str, str]) -> Any:
    """A step input value with each field replaced by the sample text given for its name (a test),
    bounded as render_value is (each text, and all of them together)."""
    return _samples_within(value, samples, [MAX_VALUE_RENDERED_CHARS])


def _samples_within(value: Any, samples: Mapping[str, str], budget: list[int]) -> Any:
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        pieces = []
        for segment in parse(value).segments:
            pieces.append(segment if isinstance(segment, str) else samples.get(segment.name, "")[:MAX_VALUE_CHARS])
        text = "".join(pieces)[:MAX_RENDERED_CHARS]
        budget[0] -= len(text)
        if budget[0] < 0:
            raise TextFieldError(f"Filled in, this input would be more than {MAX_VALUE_RENDERED_CHARS:,} characters; "
                                 "use fewer or shorter fields.")
        return text
    if isinstance(value, Mapping):
        return {k: _samples_within(v, samples, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_samples_within(v, samples, budget) for v in value]
    return value


def references_in(value: Any) -> list[FieldReference]:
    """Every field a step input value uses, in order, each once; an unreadable text gives none."""
    found: dict[str, FieldReference] = {}
    for text in strings_in(value):
        if _OPEN not in text:
            continue
        try:
            for reference in parse(text).references:
                found.setdefault(reference.name, reference)
        except TextFieldError:
            continue
    return list(found.values())


def strings_in(value: Any) -> list[str]:
    """Every string inside a step input value, to parse and check each one."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []
