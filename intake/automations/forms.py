"""The automation form builder: a draft that lives entirely in the posted form.

Without JavaScript every button posts the whole form back, so the draft (name, trigger,
steps and their typed inputs) is parsed from the form on each request, changed by the
button pressed (add a step, remove one, save) and rendered again. Input fields are
generated from each capability's marshmallow input schema; saving turns the draft into
a definition and hands it to shared.automations.repository, whose validation messages
are mapped back onto the fields they concern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from marshmallow import fields, missing, validate
from werkzeug.datastructures import MultiDict

from shared.automations import text_fields
from shared.automations.definition import MAX_STEPS, trigger_key, trigger_schema
from shared.catalog import CAPABILITIES, POLL_TRIGGERS, Capability, PollTrigger
from shared.request_input import UnreadableJSON, load_json

TRIGGER_KINDS = ("manual", "schedule", "webhook", "poll")
# Indices above this in a posted form are ignored rather than parsed: MAX_STEPS is the real limit,
# checked on save with a message; this only bounds how much a crafted form can make us parse.
_MAX_PARSED_STEPS = MAX_STEPS + 5
_STEP_KEY = re.compile(r"^steps-(\d{1,3})-capability$")
REQUIRED = "This is required."
_MARSHMALLOW_REQUIRED = "Missing data for required field."
UNKNOWN_CAPABILITY = "Choose a capability from the list."
NOT_JSON = "Enter valid JSON."


@dataclass(frozen=True)
class InputField:
    """One input of a capability as the builder renders it."""

    name: str
    label: str
    kind: str  # text, textarea, integer, lines, json, boolean
    required: bool
    help: str
    accepts: str = "any"  # which earlier outputs fit: any, string, integer, list, dict, boolean
    choices: tuple[str, ...] = ()  # kind "choice": the values a select offers


@dataclass
class StepDraft:
    capability: str
    values: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def known(self) -> Capability | None:
        return CAPABILITIES.get(self.capability)


@dataclass
class AutomationDraft:
    """What the builder form holds: text as typed, references as chosen."""

    name: str = ""
    trigger_kind: str = "manual"
    cron: str = ""
    timezone: str = "UTC"
    steps: list[StepDraft] = field(default_factory=list)
    store_outputs: bool = False
    # "When something new arrives": the source watched, how often, and each source's options as typed.
    poll_source: str = ""
    every_minutes: str = "15"
    poll_options: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def trigger_choice(self) -> str:
        """The trigger radio's value: a kind, or poll:<source> for a poll."""
        return f"poll:{self.poll_source}" if self.trigger_kind == "poll" else self.trigger_kind

    @property
    def fields_key(self) -> str:
        """What decides the trigger's fields (shared.automations.definition.trigger_key)."""
        return trigger_key({"kind": self.trigger_kind, "source": self.poll_source})


@dataclass(frozen=True)
class Action:
    """The button pressed: save, add_step, remove (with the step's index) or insert (a field into
    one of the step's inputs)."""

    kind: str
    index: int | None = None
    input_name: str | None = None
    field: str | None = None


_LABELS = {"url": "URL", "label_ids": "Label IDs", "message_ids": "Message IDs"}


def _humanise(name: str) -> str:
    return _LABELS.get(name) or name.replace("_", " ").capitalize().replace(" id", " ID")


def _range_help(f: fields.Field[Any]) -> str:
    for validator in f.validators:
        if isinstance(validator, validate.Range) and validator.min is not None and validator.max is not None:
            return f"Between {validator.min} and {validator.max}."
    return ""


def _default_help(f: fields.Field[Any]) -> str:
    default = f.load_default
    if default is None or default is missing or callable(default) or default == "":
        return "Optional."
    if isinstance(default, list):
        default = ", ".join(str(item) for item in default)
    return f"Optional; empty means {default}."


def _kind_of(f: fields.Field[Any]) -> str:
    if isinstance(f, fields.Boolean):
        return "boolean"
    if isinstance(f, fields.Integer):
        return "integer"
    if isinstance(f, fields.List):
        inner = f.inner
        if isinstance(inner, fields.String):
            return "lines"
        return "json"
    if isinstance(f, fields.Dict | fields.Nested):
        return "json"
    if isinstance(f, fields.String) and _one_of(f):
        return "choice"
    if isinstance(f, fields.String | fields.DateTime):
        for validator in f.validators:
            if isinstance(validator, validate.Length) and validator.max and validator.max > 500:
                return "textarea"
        return "text"
    return "textarea"  # fields.Raw: text a step reads, usually an earlier step's output


def _one_of(f: fields.Field[Any]) -> tuple[str, ...]:
    for validator in f.validators:
        if isinstance(validator, validate.OneOf):
            return tuple(str(choice) for choice in validator.choices)
    return ()


def choice_label(value: str) -> str:
    """An operator or type as the builder's select shows it: greater_than is "greater than"."""
    return value.replace("_", " ")


def _category(f: fields.Field[Any]) -> str:
    """The shape of value a field holds, to match step outputs with the inputs they can feed."""
    if type(f) is fields.Raw:
        return "any"
    for kind, classes in (("boolean", fields.Boolean), ("integer", fields.Number), ("list", fields.List),
                          ("dict", fields.Dict | fields.Nested), ("string", fields.String | fields.DateTime)):
        if isinstance(f, classes):
            return kind
    return "any"


_KIND_HELP = {
    "lines": "One per line.",
    "json": "JSON.",
}


@dataclass(frozen=True)
class PollChoice:
    """A poll source as the builder offers it: its radio value and its option inputs."""

    source: PollTrigger
    options: tuple[InputField, ...]

    @property
    def value(self) -> str:
        return f"poll:{self.source.key}"


@cache
def poll_choices() -> tuple[PollChoice, ...]:
    """Every poll source with its options, from the catalog."""
    result = []
    for source in POLL_TRIGGERS.values():
        options = []
        for attribute, f in source.options_schema().fields.items():
            name = f.data_key or attribute
            notes = [str(f.metadata.get("description", ""))] + ([] if f.required else [_default_help(f)])
            options.append(InputField(name, _humanise(name), "text", bool(f.required),
                                      " ".join(n for n in notes if n)))
        result.append(PollChoice(source, tuple(options)))
    return tuple(result)


def input_fields(capability_key: str) -> tuple[InputField, ...]:
    """The capability's inputs in schema order, named by the keys its schema loads.

    Only catalog keys reach the cache: the key comes from a posted form, and caching every
    string a client sends would grow the worker's memory without bound."""
    return _input_fields(capability_key) if capability_key in CAPABILITIES else ()


@cache
def _input_fields(capability_key: str) -> tuple[InputField, ...]:
    capability = CAPABILITIES[capability_key]
    result = []
    for attribute, f in capability.input_schema().fields.items():
        name = f.data_key or attribute
        kind = _kind_of(f)
        notes = [] if f.required else [_default_help(f)]
        notes += [text for text in (_KIND_HELP.get(kind, ""), _range_help(f)) if text]
        if isinstance(f, fields.AwareDateTime):
            notes.append("A date and time with its offset, like 2026-03-02T09:00:00+01:00.")
        if isinstance(f, fields.Url):
            notes.append("An https:// address.")
        result.append(InputField(name, _humanise(name), kind, bool(f.required), " ".join(notes), _category(f),
                                 _one_of(f)))
    return tuple(result)


@cache
def timezones() -> tuple[str, ...]:
    """UTC, then Region/City names; legacy aliases stay valid but are not offered."""
    legacy = ("Etc/", "SystemV/", "posix/", "right/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/")
    return ("UTC", *sorted(z for z in available_timezones() if "/" in z and not z.startswith(legacy)))


def capability_choices() -> list[tuple[str, list[Capability]]]:
    """Capabilities grouped by provider, for the step picker."""
    from shared.catalog import PROVIDERS

    groups: dict[str, list[Capability]] = {}
    for capability in CAPABILITIES.values():
        groups.setdefault(PROVIDERS[capability.provider].name, []).append(capability)
    return list(groups.items())


def reference_options(draft: AutomationDraft, index: int, into: InputField | None = None) -> list[tuple[str, str]]:
    """(value, label) of every earlier step output a step's input may use (of a shape it accepts)."""
    options = []
    for earlier, step in enumerate(draft.steps[:index]):
        capability = step.known
        if capability is None:
            continue
        for attribute, f in capability.output_schema().fields.items():
            if into is not None and into.accepts != "any" and _category(f) != into.accepts:
                continue
            name = f.data_key or attribute
            options.append((f"steps.{earlier}.{name}", f"Step {earlier + 1} ({capability.title}): {_humanise(name)}"))
    return options


# The input kinds that take text with fields (and so get the picker).
TEXT_KINDS = ("text", "textarea", "lines", "json")
_MINUTES = re.compile(r"[0-9]{1,6}")
_INSERT = re.compile(r"^insert:(\d{1,3}):([a-z_][a-z0-9_]{0,40}):((?:trigger|steps)(?:\.[a-z0-9_]{1,41}){1,8})$")


def available_fields(draft: AutomationDraft, index: int) -> list[text_fields.AvailableField]:
    """The fields step `index` (from 0) may insert in its texts: the trigger's, then each earlier
    step's, from the output schemas, with their types."""
    result = text_fields.fields_of(trigger_schema(draft.fields_key), "trigger", "Trigger")
    for earlier, step in enumerate(draft.steps[:index]):
        capability = step.known
        if capability is None:
            continue
        asked = [line.strip() for line in step.values.get("fields", "").splitlines() if line.strip()]
        result += text_fields.fields_of(capability.output_schema(), f"steps.{earlier + 1}",
                                        f"Step {earlier + 1} ({capability.title})", dict_keys=asked)
    return result


def parse_action(form: Mapping[str, str]) -> Action:
    value = form.get("action", "save")
    if value.startswith("remove:") and value[7:].isdigit():
        return Action("remove", int(value[7:]))
    if value.startswith("test:") and value[5:].isdigit():
        return Action("test", int(value[5:]))
    insert = _INSERT.match(value)
    if insert:
        return Action("insert", int(insert.group(1)), insert.group(2), insert.group(3))
    if value == "add_step":
        return Action("add_step")
    return Action("save")


def draft_from_form(form: MultiDict[str, str]) -> AutomationDraft:
    """The draft as posted; unknown keys are ignored, values are kept as typed."""
    choice = form.get("trigger_kind", "manual")
    draft = AutomationDraft(
        name=form.get("name", "").strip(),
        trigger_kind="poll" if choice.startswith("poll:") else choice,
        cron=" ".join(form.get("cron", "").split()),
        timezone=form.get("timezone", "UTC"),
        store_outputs=form.get("store_outputs") == "on",
        poll_source=choice[5:] if choice.startswith("poll:") else "",
        every_minutes=form.get("every_minutes", "15").strip(),
    )
    for poll in poll_choices():
        draft.poll_options[poll.source.key] = {
            option.name: form.get(f"poll-{poll.source.key}-{option.name}", "").strip() for option in poll.options}
    indices = sorted(int(m.group(1)) for key in form if (m := _STEP_KEY.match(key)))
    for index in indices[:_MAX_PARSED_STEPS]:
        capability = form.get(f"steps-{index}-capability", "")
        step = StepDraft(capability)
        for input_field in input_fields(capability):
            step.values[input_field.name] = form.get(f"steps-{index}-value-{input_field.name}", "")
            reference = form.get(f"steps-{index}-ref-{input_field.name}", "")
            if reference:
                step.refs[input_field.name] = reference
        draft.steps.append(step)
    return draft


def _as_text(value: Any, kind: str) -> str:
    if kind == "lines" and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    if kind == "json":
        return json.dumps(value, indent=2)
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def draft_from_definition(automation: Mapping[str, Any]) -> AutomationDraft:
    """A saved automation, as the edit form shows it."""
    trigger = automation.get("trigger") or {"kind": "manual"}
    draft = AutomationDraft(
        name=automation.get("name", ""),
        trigger_kind=trigger.get("kind", "manual"),
        cron=trigger.get("cron", ""),
        timezone=trigger.get("timezone", "UTC"),
        store_outputs=bool(automation.get("store_outputs")),
        poll_source=str(trigger.get("source", "")) if trigger.get("kind") == "poll" else "",
        every_minutes=str(trigger.get("every_minutes", 15)),
    )
    if draft.poll_source:
        draft.poll_options[draft.poll_source] = {str(k): str(v) for k, v in (trigger.get("options") or {}).items()}
    for saved in automation.get("steps") or []:
        step = StepDraft(saved.get("capability", ""))
        kinds = {f.name: f.kind for f in input_fields(step.capability)}
        for name, value in (saved.get("input") or {}).items():
            if isinstance(value, Mapping) and set(value) == {"$ref"}:
                step.refs[name] = str(value["$ref"])
            elif name in kinds:
                step.values[name] = _as_text(value, kinds[name])
        draft.steps.append(step)
    return draft


def apply_action(draft: AutomationDraft, action: Action, new_capability: str, new_position: str = "") -> str | None:
    """Add or remove a step in place; a message when the button cannot be honoured.

    A new step goes at the end, or before the step whose index new_position holds (a condition
    before the step it guards); fields and references of the steps after it move up by one."""
    if action.kind == "add_step":
        if new_capability not in CAPABILITIES:
            return UNKNOWN_CAPABILITY
        if len(draft.steps) >= MAX_STEPS:
            return f"An automation has at most {MAX_STEPS} steps."
        position = int(new_position) if new_position.isdigit() and int(new_position) < len(draft.steps) \
            else len(draft.steps)
        _renumber_for_insert(draft, position)
        draft.steps.insert(position, StepDraft(new_capability))
    elif action.kind == "remove" and action.index is not None and action.index < len(draft.steps):
        del draft.steps[action.index]
        _renumber_references(draft, action.index)
    elif action.kind == "insert" and action.index is not None and action.index < len(draft.steps):
        return _insert_field(draft, action)
    return None


NOT_INSERTABLE = "That field is not available at this step; choose one from its list."


def _insert_field(draft: AutomationDraft, action: Action) -> str | None:
    """Append the chosen field, as written in text, to the input's value (the picker without JavaScript)."""
    assert action.index is not None and action.field is not None
    step = draft.steps[action.index]
    written = "{{ " + action.field + " }}"
    kinds = {f.name: f.kind for f in input_fields(step.capability)}
    if kinds.get(action.input_name or "") not in TEXT_KINDS or \
            written not in {f.written for f in available_fields(draft, action.index)}:
        return NOT_INSERTABLE
    name = action.input_name or ""
    current = step.values.get(name, "")
    separator = "" if not current or current.endswith((" ", "\n")) else " "
    step.values[name] = current + separator + written
    step.refs.pop(name, None)  # the text is what the client is now building
    return None


_TEXT_STEP_FIELD = re.compile(r"\{\{(\s*)steps\.(\d{1,3})\.")


def _renumber_texts(text: str, removed: int) -> str:
    """Fields of later steps move down by one; a field of the removed step is marked so saving names it."""
    def renumber(match: re.Match[str]) -> str:
        number = int(match.group(2))
        if number == removed + 1:
            return "{{" + match.group(1) + "steps.removed."
        if number > removed + 1:
            return "{{" + match.group(1) + f"steps.{number - 1}."
        return match.group(0)
    return _TEXT_STEP_FIELD.sub(renumber, text)


def _renumber_for_insert(draft: AutomationDraft, inserted: int) -> None:
    """Before a step is inserted at this index, fields and references of it and later steps move up by one."""
    def renumber(match: re.Match[str]) -> str:
        number = int(match.group(2))
        return "{{" + match.group(1) + f"steps.{number + 1}." if number > inserted else match.group(0)
    pattern = re.compile(r"^steps\.(\d+)\.(.+)$")
    for step in draft.steps:
        for name, value in list(step.values.items()):
            if "{{" in value:
                step.values[name] = _TEXT_STEP_FIELD.sub(renumber, value)
        for name, reference in list(step.refs.items()):
            match = pattern.match(reference)
            if match and int(match.group(1)) >= inserted:
                step.refs[name] = f"steps.{int(match.group(1)) + 1}.{match.group(2)}"


def _renumber_references(draft: AutomationDraft, removed: int) -> None:
    """After removing a step, references to it are dropped and later ones move down by one."""
    pattern = re.compile(r"^steps\.(\d+)\.(.+)$")
    for step in draft.steps:
        for name, value in list(step.values.items()):
            if "{{" in value:
                step.values[name] = _renumber_texts(value, removed)
        for name, reference in list(step.refs.items()):
            match = pattern.match(reference)
            if not match:
                continue
            source = int(match.group(1))
            if source == removed:
                del step.refs[name]
            elif source > removed:
                step.refs[name] = f"steps.{source - 1}.{match.group(2)}"


def definition_from_draft(draft: AutomationDraft) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The definition to validate and save, and the fields whose text could not be read."""
    unreadable: dict[str, list[str]] = {}
    trigger: dict[str, Any] = {"kind": draft.trigger_kind}
    if draft.trigger_kind == "schedule":
        trigger.update(cron=draft.cron, timezone=draft.timezone)
    if draft.trigger_kind == "poll":
        options = {k: v for k, v in draft.poll_options.get(draft.poll_source, {}).items() if v}
        # ASCII digits only, and few: str.isdigit() also says yes to "²" and to 5000 digits, which int() refuses.
        every: Any = int(draft.every_minutes) if _MINUTES.fullmatch(draft.every_minutes) else draft.every_minutes
        trigger.update(source=draft.poll_source, every_minutes=every, options=options)
    steps = []
    for index, step in enumerate(draft.steps):
        given: dict[str, Any] = {}
        for input_field in input_fields(step.capability):
            name = input_field.name
            if step.refs.get(name):
                given[name] = {"$ref": step.refs[name]}
                continue
            raw = step.values.get(name, "")
            if not raw.strip():
                continue
            try:
                given[name] = _typed(raw, input_field.kind)
            except UnreadableJSON as refused:
                unreadable[f"steps.{index}.input.{name}"] = [refused.refusal.message]
            except ValueError:
                unreadable[f"steps.{index}.input.{name}"] = [NOT_JSON]
        steps.append({"capability": step.capability, "input": given})
    definition: dict[str, Any] = {"trigger": trigger, "steps": steps, "store_outputs": draft.store_outputs}
    if draft.name:
        definition["name"] = draft.name
    return definition, unreadable


def _typed(raw: str, kind: str) -> Any:
    text = raw.replace("\r\n", "\n")
    if kind == "integer":
        stripped = text.strip()
        # A non-number goes through as typed so the schema's own message reaches the form.
        return int(stripped) if re.fullmatch(r"[+-]?\d{1,12}", stripped) else stripped
    if kind == "lines":
        return [line.strip() for line in text.split("\n") if line.strip()]
    if kind == "json":
        return load_json(text)
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.strip(), text.strip())
    if kind == "text":
        return text.strip()
    return text


_MARSHMALLOW_LENGTH = re.compile(r"^Length must be between (\d+) and (\d+)\.$")
_STEP_INPUT_KEY = re.compile(r"^steps\.(\d+)\.input\.(\w+)$")


def _in_words(text: str, counts_characters: bool) -> str:
    """Marshmallow's wording as a person reads it: "This is required.", "Write at most 40,000 characters."."""
    if text == _MARSHMALLOW_REQUIRED:
        return REQUIRED
    length = _MARSHMALLOW_LENGTH.match(text)
    if length and counts_characters:
        low, high = int(length.group(1)), int(length.group(2))
        return f"Write at most {high:,} characters." if low <= 1 else f"Write {low:,} to {high:,} characters."
    return text


def form_errors(messages: Mapping[str, Any], draft: AutomationDraft | None = None) -> dict[str, list[str]]:
    """Validation messages keyed as the form's fields are: name, trigger.cron, steps.0.input.query, ...

    With the draft, a length message on a text input says how many characters it may hold."""
    errors: dict[str, list[str]] = {}

    def counts_characters(key: str) -> bool:
        if key == "name":
            return True
        step_input = _STEP_INPUT_KEY.match(key)
        if draft is None or not step_input or int(step_input.group(1)) >= len(draft.steps):
            return False
        kinds = {f.name: f.kind for f in input_fields(draft.steps[int(step_input.group(1))].capability)}
        return kinds.get(step_input.group(2)) in ("text", "textarea")

    def put(key: str, value: Any) -> None:
        texts = _flatten(value)
        if key.endswith(".capability"):
            texts = [UNKNOWN_CAPABILITY]
        errors.setdefault(key, []).extend(_in_words(t, counts_characters(key)) for t in texts)

    for top, value in messages.items():
        if top == "steps" and isinstance(value, Mapping):
            for index, step_messages in value.items():
                if not isinstance(step_messages, Mapping):
                    put(f"steps.{index}", step_messages)
                    continue
                for key, message in step_messages.items():
                    if key == "input" and isinstance(message, Mapping):
                        for name, text in message.items():
                            put(f"steps.{index}.input.{name}", text)
                    else:
                        put(f"steps.{index}.{key}", message)
        elif top == "trigger" and isinstance(value, Mapping):
            for key, message in value.items():
                if key == "options" and isinstance(message, Mapping):
                    for name, text in message.items():
                        put(f"trigger.options.{name}", text)
                    continue
                put("trigger" if key == "_schema" else f"trigger.{key}", message)
        else:
            put(str(top), value)
    return errors


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        texts = []
        for key, inner in value.items():
            prefix = f"Item {key + 1}: " if isinstance(key, int) else f"{key}: "
            texts += [prefix + text for text in _flatten(inner)]
        return texts
    if isinstance(value, list | tuple):
        return [text for item in value for text in _flatten(item)]
    return [str(value)]


def placed_keys(draft: AutomationDraft) -> set[str]:
    """Every error key the builder shows next to a field; others are listed at the top."""
    keys = {"name", "trigger", "trigger.kind", "trigger.cron", "trigger.timezone", "trigger.source",
            "trigger.every_minutes", "steps", "store_outputs"}
    if draft.poll_source in POLL_TRIGGERS:
        keys |= {f"trigger.options.{option.name}" for poll in poll_choices() if poll.source.key == draft.poll_source
                 for option in poll.options}
    for index, step in enumerate(draft.steps):
        keys |= {f"steps.{index}", f"steps.{index}.capability", f"steps.{index}.input"}
        keys |= {f"steps.{index}.input.{f.name}" for f in input_fields(step.capability)}
    return keys
