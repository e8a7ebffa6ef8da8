"""The chat's versioned prompt: a hand-written system prompt and a catalog description generated from
shared.catalog, both kept under prompts/<version>/ so that what the model was told is in the repository.

`python -m agent_service.chat.prompt` rewrites prompts/<version>/catalog.md from the catalog; a test
fails while the committed file and the catalog disagree.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import RAISE, Schema, fields, missing, validate

from shared.automations import text_fields
from shared.automations.definition import AutomationSchema, trigger_schema
from shared.catalog import CAPABILITIES, POLL_TRIGGERS, PROVIDERS, AuthKind, Capability, PollTrigger

CHAT_PROMPT_VERSION = "v1"
PROMPTS_DIR = Path(__file__).with_name("prompts")
PROPOSE = "propose_automation"
ASK = "ask_question"
MAX_MESSAGE_CHARACTERS = 2000

_TRIGGERS = {
    "manual": "runs when the client presses Run now. No other fields.",
    "schedule": ("runs on a schedule. `cron`: a five-field cron expression (minute hour day-of-month month "
                 "day-of-week); `timezone`: an IANA time zone such as Europe/Paris (UTC when left out). "
                 "At most once every five minutes."),
    "webhook": "runs when the automation's own webhook address is called. No other fields.",
    "poll": ("when something new arrives: one run for each new item of a source listed under \"Poll sources\" "
             "below. `source`: the source's key; `every_minutes`: how often to check, from 5 to 1440 (15 when "
             "left out); `options`: the source's options; `timezone` as for a schedule. The first check after "
             "enabling takes what is already there as seen. The item's fields depend on the source."),
}


def trigger_kinds() -> list[str]:
    """The trigger kinds the automation schema accepts, read from the schema itself."""
    kind = AutomationSchema().fields["trigger"].schema.fields["kind"]  # type: ignore[attr-defined]  # the trigger is a Nested field
    for validator in kind.validators:
        if isinstance(validator, validate.OneOf):
            return [str(choice) for choice in validator.choices]
    raise RuntimeError("the trigger schema names no kinds")


def prompt_path(name: str, version: str = CHAT_PROMPT_VERSION) -> Path:
    return PROMPTS_DIR / version / name


@cache
def system_prompt(version: str = CHAT_PROMPT_VERSION) -> str:
    """The hand-written instructions followed by the catalog description, as committed."""
    return prompt_path("system.md", version).read_text(encoding="utf-8").strip() + "\n\n" + \
        prompt_path("catalog.md", version).read_text(encoding="utf-8").strip()


class ProposeAutomationInput(Schema):
    """A whole automation as the client would build it by hand (without the client's own store-outputs switch)."""

    class Meta:
        unknown = RAISE

    message = fields.String(required=True, validate=validate.Length(max=MAX_MESSAGE_CHARACTERS),
                            metadata={"description": "One or two plain sentences to the client about this proposal."})
    automation = fields.Nested(AutomationSchema(exclude=("store_outputs",)), required=True)


class AskQuestionInput(Schema):
    class Meta:
        unknown = RAISE

    question = fields.String(required=True, validate=validate.Length(1, MAX_MESSAGE_CHARACTERS))


def json_schema(schema: Schema) -> dict[str, Any]:
    """The JSON Schema of a marshmallow schema, nested schemas inline (a tool's input_schema has no $refs)."""
    spec = APISpec(title="chat tools", version="1", openapi_version="3.1.0")
    converter = OpenAPIConverter(openapi_version="3.1.0", schema_name_resolver=lambda _: None, spec=spec)
    return converter.schema2jsonschema(schema)  # type: ignore[no-any-return]  # apispec's converter is untyped


def tools() -> list[dict[str, Any]]:
    """The only two answers the model may give: a proposal within the catalog, or a question."""
    return [
        {
            "name": PROPOSE,
            "description": ("Propose a complete automation built only from the catalog's capabilities and "
                            "triggers. Hapex validates it and shows it to the client, who may approve it."),
            "input_schema": json_schema(ProposeAutomationInput()),
        },
        {
            "name": ASK,
            "description": ("Ask the client one question, in plain words, when a detail is missing or when what "
                            "they want is outside the catalog."),
            "input_schema": json_schema(AskQuestionInput()),
        },
    ]


# --- the catalog description -------------------------------------------------------------

_TYPE_NAMES: list[tuple[type[fields.Field[Any]], str]] = [
    (fields.AwareDateTime, "date-time with a UTC offset (ISO 8601)"),
    (fields.Url, "https URL"),
    (fields.Email, "email address"),
    (fields.Integer, "integer"),
    (fields.Boolean, "true or false"),
    (fields.String, "string"),
    (fields.Dict, "object"),
    (fields.Raw, "any value"),
]


def _type_name(field: fields.Field[Any]) -> str:
    if isinstance(field, fields.List):
        return f"list of {_type_name(field.inner)}"
    if isinstance(field, fields.Nested):
        nested = field.schema
        return "object with " + ", ".join(_name(n, f) for n, f in nested.fields.items())
    for kind, name in _TYPE_NAMES:
        if isinstance(field, kind):
            return name
    return "value"


def _name(name: str, field: fields.Field[Any]) -> str:
    return field.data_key or name


def _constraints(field: fields.Field[Any]) -> list[str]:
    notes = []
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            unit = "items" if isinstance(field, fields.List) else "characters"
            notes.append(f"{validator.min if validator.min is not None else 0}–{validator.max} {unit}"
                         if validator.max is not None else f"at least {validator.min} {unit}")
        elif isinstance(validator, validate.Range):
            notes.append(f"{validator.min}–{validator.max}")
        elif isinstance(validator, validate.Regexp):
            notes.append(f"matching {str(validator.regex.pattern)}")
        elif isinstance(validator, validate.OneOf):
            notes.append("one of " + ", ".join(map(str, validator.choices)))
        elif isinstance(validator, validate.Email):
            notes.append("an email address")
    if isinstance(field, fields.List):
        notes.extend(f"each {note}" for note in _constraints(field.inner))
    return notes


def _field_line(name: str, field: fields.Field[Any]) -> str:
    parts = [_type_name(field)]
    if field.required:
        parts.append("required")
    elif field.load_default is not missing and not callable(field.load_default):
        parts.append(f"default {field.load_default!r}")
    parts.extend(_constraints(field))
    return f"- `{_name(name, field)}`: " + "; ".join(parts)


def _schema_lines(schema: type[Schema]) -> list[str]:
    return [_field_line(name, field) for name, field in schema().fields.items()]


def _capability_section(capability: Capability) -> list[str]:
    provider = PROVIDERS[capability.provider]
    if capability.scopes:
        needs = "; ".join(f"{scope} ({provider.scope(scope).access})" for scope in capability.scopes)
    elif provider.auth_kind is AuthKind.OAUTH2:
        needs = "the pages or items the client shares with Hapex"
    elif provider.auth_kind is AuthKind.API_KEY:
        needs = "a secret the client stores on the connections page"
    else:
        needs = "nothing from the client (Hapex's own account)"
    lines = [
        f"### {capability.key}: {capability.title} ({provider.name})",
        f"{capability.description} It {'writes' if capability.access == 'write' else 'reads'}; "
        f"access it needs: {needs}.",
        "Input:",
        *_schema_lines(capability.input_schema),
        "Output:",
        *_schema_lines(capability.output_schema),
    ]
    return lines


def _poll_section(poll: PollTrigger) -> list[str]:
    provider = PROVIDERS[poll.provider]
    needs = "; ".join(f"{scope} ({provider.scope(scope).access})" for scope in poll.scopes)
    return [
        f"### {poll.key}: {poll.title} ({provider.name})",
        f"{poll.description} It reads; access it needs: {needs}.",
        "Options:",
        *_schema_lines(poll.options_schema),
        "Trigger fields: " + ", ".join(f.written.strip("{} ") for f in text_fields.fields_of(
            poll.item_fields(), "trigger", "Trigger")) + ".",
        "",
    ]


def describe_catalog() -> str:
    """Every trigger and capability with its input and output fields and the scopes it needs."""
    lines = [
        "# The catalog",
        "",
        "Generated from shared.catalog by `python -m agent_service.chat.prompt`; do not edit by hand.",
        "",
        "## Triggers",
        "",
        *[f"- `{kind}`: {_TRIGGERS.get(kind, 'no other fields.')} Trigger fields: "
          + ", ".join(f"`trigger.{name}`" for name in trigger_schema(kind).fields)
          for kind in trigger_kinds()],
        "",
        "## Poll sources",
        "",
        *[line for poll in POLL_TRIGGERS.values() for line in _poll_section(poll)],
        "## Capabilities",
        "",
        "An input value may instead take an earlier step's output: {\"$ref\": \"steps.<index>.<output field>\"}, "
        "where <index> counts the steps from 0 and must be smaller than the step's own index.",
        "",
        "A text value may also mix words with fields: \"New invoice from {{ steps.1.messages.1.sender }}: "
        "{{ steps.2.text }}\". In text, steps are numbered from 1 as the client sees them (so {{ steps.1.x }} is "
        "the first step, the one $ref calls steps.0), a field must come from an earlier step's output or from the "
        "trigger's fields listed above ({{ trigger.<field> }}), nested fields are joined by dots and a list's item "
        "by its number from 1 (.1 is the first). Nothing else is allowed inside {{ }}: no filters, no "
        "expressions, no loops. Write \\{{ for a literal {{.",
        "",
    ]
    for capability in CAPABILITIES.values():
        lines.extend(_capability_section(capability))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the catalog description of the current prompt version from the catalog."""
    target = prompt_path("catalog.md")
    target.write_text(describe_catalog(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
