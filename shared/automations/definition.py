"""Validating an automation against the catalog, the same way on create, update and run.

A step's input is checked by its capability's marshmallow schema. A value may instead be a
reference to an earlier step's output, `{"$ref": "steps.<index>.<field>"}`; the reference
must point backwards to a field the earlier step's output schema declares, and the
referenced value is checked by the schema when the run resolves it. A string value may also
be text with fields (shared.automations.text_fields): each `{{ ... }}` must name a field of
the trigger or of an earlier step's output schema, and the filled-in text is checked by the
schema when the run resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.automations import text_fields
from shared.automations.conditions import as_date, as_number
from shared.catalog import CAPABILITIES, CONDITION, POLL_MAX_MINUTES, POLL_MIN_MINUTES, POLL_TRIGGERS
from shared.catalog.schemas import TRIGGER_FIELDS, UNARY_OPERATORS, TriggerFields

MAX_STEPS = 20
MIN_SCHEDULE_INTERVAL = timedelta(minutes=5)
_REF = re.compile(r"^steps\.(\d{1,2})\.([a-z_][a-z0-9_]{0,40})$")


class InvalidAutomation(ValueError):
    """The automation is not valid; `fields` says where."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        super().__init__("The automation is not valid.")


def _is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"$ref"}


class TriggerSchema(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(["manual", "schedule", "webhook", "poll"]))
    cron = fields.String(validate=validate.Length(1, 100))
    timezone = fields.String(validate=validate.Length(1, 64))
    # A poll ("when something new arrives"): what to watch, how often, and its options.
    source = fields.String(validate=validate.OneOf(sorted(POLL_TRIGGERS), error=(
        "Choose what to watch: " + ", ".join(t.title.lower() for t in POLL_TRIGGERS.values()) + ".")))
    every_minutes = fields.Integer(strict=False, error_messages={
        "invalid": "Write how often to check as a whole number of minutes, like 15 (5 at the finest)."})
    options = fields.Dict(keys=fields.String())

    @validates_schema
    def _poll_needs_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") != "poll":
            if {"source", "every_minutes", "options"} & set(data):
                raise ValidationError("Only a “when something new arrives” trigger has a source to watch.",
                                      "source")
            return
        if "cron" in data:
            raise ValidationError("A “when something new arrives” trigger has no cron expression; it checks "
                                  "every few minutes (every_minutes).", "cron")
        if not data.get("source"):
            raise ValidationError("Choose what to watch: " + ", ".join(
                t.title.lower() for t in POLL_TRIGGERS.values()) + ".", "source")
        every = data.setdefault("every_minutes", 15)
        if not POLL_MIN_MINUTES <= every <= POLL_MAX_MINUTES:
            raise ValidationError(f"Checking for new items can happen every {POLL_MIN_MINUTES} minutes at the "
                                  f"finest and once a day ({POLL_MAX_MINUTES} minutes) at the coarsest: write a "
                                  f"number of minutes between {POLL_MIN_MINUTES} and {POLL_MAX_MINUTES}, like 15.",
                                  "every_minutes")
        zone = data.get("timezone", "UTC")
        if zone not in available_timezones():
            raise ValidationError("Not a known time zone: choose one from the list, like Europe/London.",
                                  "timezone")
        try:
            data["options"] = POLL_TRIGGERS[data["source"]].options_schema().load(data.get("options") or {})
        except ValidationError as exc:
            raise ValidationError({"options": exc.normalized_messages()}) from None

    @validates_schema
    def _schedule_needs_cron(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") != "schedule":
            if "cron" in data or ("timezone" in data and data.get("kind") != "poll"):
                raise ValidationError("Only a schedule has a cron expression and a time zone.", "cron")
            return
        cron = data.get("cron")
        if not cron:
            raise ValidationError("A schedule needs a cron expression: five fields, like 0 8 * * 1-5 "
                                  "(08:00 on weekdays).", "cron")
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ValidationError("Not a valid five-field cron expression: a schedule needs five fields (minute, "
                                  "hour, day of month, month, day of week), like 0 8 * * 1-5 for 08:00 on "
                                  "weekdays.", "cron")
        zone = data.get("timezone", "UTC")
        if zone not in available_timezones():
            raise ValidationError("Not a known time zone: choose one from the list, like Europe/London.",
                                  "timezone")
        first = next_fire_time(data, datetime(2026, 1, 5, tzinfo=ZoneInfo("UTC")))
        second = next_fire_time(data, first)
        if second - first < MIN_SCHEDULE_INTERVAL:
            raise ValidationError("A schedule may run at most every five minutes: put */5 or a longer step in "
                                  "the minute field, like */15 * * * *.", "cron")


class StepSchema(Schema):
    class Meta:
        unknown = RAISE

    capability = fields.String(required=True, validate=validate.OneOf(sorted(CAPABILITIES)))
    input = fields.Dict(keys=fields.String(), load_default=dict,
                        metadata={"description": "The capability's input fields, as the catalog lists them."})


class AutomationSchema(Schema):
    """The whole definition; step inputs are checked against their capabilities after load."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 200))
    trigger = fields.Nested(TriggerSchema, load_default=lambda: {"kind": "manual"})
    steps = fields.List(fields.Nested(StepSchema), required=True, validate=validate.Length(1, MAX_STEPS))
    store_outputs = fields.Boolean(load_default=False)

    @validates_schema
    def _steps_fit_their_capabilities(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[int, Any] = {}
        trigger_kind = trigger_key(data.get("trigger") or {})
        for index, step in enumerate(data.get("steps", [])):
            problems = _step_input_errors(index, step, data["steps"], trigger_kind)
            if problems:
                errors[index] = {"input": problems}
        steps = data.get("steps", [])
        if steps and steps[-1].get("capability") == CONDITION and len(steps) - 1 not in errors:
            errors[len(steps) - 1] = ["A “continue only if” step needs a step after it, the one it lets run; "
                                      "add that step or remove this one."]
        if errors:
            raise ValidationError(errors, "steps")


def _step_input_errors(index: int, step: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
                       trigger_kind: str = "manual") -> dict[str, Any]:
    capability = CAPABILITIES[step["capability"]]
    given = dict(step.get("input") or {})
    problems: dict[str, Any] = {}
    references = [name for name, value in given.items() if _is_ref(value)]
    for name in references:
        message = _reference_error(index, given[name]["$ref"], steps)
        if message:
            problems[name] = [message]
    for name, value in list(given.items()):
        if name in references or not text_fields.has_fields(value):
            continue
        messages, uses_fields = _text_field_errors(index, value, steps, trigger_kind)
        if messages:
            problems[name] = messages
        if messages or uses_fields:
            references.append(name)  # checked by the schema once the run fills it in
        else:
            given[name] = text_fields.render_value(value, trigger={}, outputs=[])  # only \{{ escapes
    try:
        capability.input_schema().load({k: v for k, v in given.items() if k not in references},
                                       partial=tuple(references))
    except ValidationError as exc:
        for name, message in exc.normalized_messages().items():
            problems.setdefault(name, message)
    for name in references:
        if name not in capability.input_schema().fields and name not in problems:
            problems[name] = ["Unknown field."]
    if capability.key == CONDITION and not problems:
        problems.update(_condition_errors(given, references))
    return problems


def _condition_errors(given: Mapping[str, Any], with_fields: Sequence[str]) -> dict[str, list[str]]:
    """A comparison needs something to compare with, of the type it compares as."""
    operator, compare_as = given.get("operator"), given.get("compare_as", "text")
    compare_to = given.get("compare_to", "")
    if operator in UNARY_OPERATORS:
        if isinstance(compare_to, str) and compare_to.strip():
            return {"compare_to": ["“is empty” compares with nothing: leave this empty."]}
        return {}
    if operator in ("contains", "not_contains") and compare_as != "text":
        return {"operator": ["Only text can contain text: compare as text, or choose another comparison."]}
    if not isinstance(compare_to, str) or not compare_to.strip():
        return {"compare_to": ["Enter what to compare with, like 500 or {{ steps.1.text }}."]}
    if "compare_to" in with_fields:
        return {}
    if compare_as == "number" and as_number(compare_to) is None:
        return {"compare_to": ["Not a number: write it like 500 or 1250.50."]}
    if compare_as == "date" and as_date(compare_to) is None:
        return {"compare_to": ["Not a date: write it like 2026-03-02 or 2026-03-02T09:00:00+01:00."]}
    return {}


def _reference_error(index: int, reference: Any, steps: Sequence[Mapping[str, Any]]) -> str | None:
    match = _REF.match(reference) if isinstance(reference, str) else None
    if not match:
        return "A reference looks like steps.<number>.<field>."
    source = int(match.group(1))
    if source >= index:
        return "A step can only use the output of an earlier step."
    output_fields = CAPABILITIES[steps[source]["capability"]].output_schema().fields
    if match.group(2) not in output_fields:
        return f"Step {source} has no output named {match.group(2)}."
    return None


def trigger_key(trigger: Mapping[str, Any]) -> str:
    """What decides a trigger's fields: its kind, or for a poll its source (gmail.new_email)."""
    kind = str(trigger.get("kind", "manual"))
    if kind == "poll" and trigger.get("source") in POLL_TRIGGERS:
        return str(trigger["source"])
    return kind


def trigger_schema(kind: str) -> Schema:
    """The fields a trigger of this kind (or poll source, see trigger_key) gives a run."""
    if kind in POLL_TRIGGERS:
        return POLL_TRIGGERS[kind].item_fields()
    return TRIGGER_FIELDS.get(kind, TriggerFields)()


def _text_field_errors(index: int, value: Any, steps: Sequence[Mapping[str, Any]],
                       trigger_kind: str) -> tuple[list[str], bool]:
    """What is wrong with the fields in a value's texts, and whether it uses any field at all."""
    messages: list[str] = []
    uses_fields = False
    for text in text_fields.strings_in(value):
        if "{{" not in text:
            continue
        try:
            parsed = text_fields.parse(text)
        except text_fields.TextFieldError as exc:
            messages.append(str(exc))
            continue
        for reference in parsed.references:
            uses_fields = True
            message = field_reference_error(index, reference, steps, trigger_kind)
            if message:
                messages.append(f"{reference.written}: {message}")
    return messages, uses_fields


def field_reference_error(index: int, reference: text_fields.FieldReference, steps: Sequence[Mapping[str, Any]],
                          trigger_kind: str) -> str | None:
    """None when the reference names a field that step `index` (from 0) can use; else how to fix it."""
    if reference.source == "trigger":
        root = (f"a “{POLL_TRIGGERS[trigger_kind].title}” trigger" if trigger_kind in POLL_TRIGGERS
                else f"a {trigger_kind.replace('_', ' ')} trigger")
        return text_fields.check_path(trigger_schema(trigger_kind), reference.path, root=root)
    assert reference.step is not None
    if reference.step > index:
        if reference.step == index + 1:
            return "a step cannot use its own output; use a field of an earlier step."
        return (f"step {reference.step} comes after this one (step {index + 1}); a step can only use the "
                "fields of the steps before it.")
    source = steps[reference.step - 1]
    capability = CAPABILITIES.get(source.get("capability", ""))
    if capability is None:
        return f"step {reference.step} is not a known capability."
    dict_keys = _asked_keys(source)
    root = f"step {reference.step} ({capability.title})"
    problem = text_fields.check_path(capability.output_schema(), reference.path, dict_keys=dict_keys, root=root)
    if problem and not problem.startswith(root):
        return f"{root}: {problem}"
    return problem


def _asked_keys(step: Mapping[str, Any]) -> list[str]:
    """The keys an extract step was asked for: the only keys its values object can hold."""
    wanted = (step.get("input") or {}).get("fields")
    if isinstance(wanted, list) and all(isinstance(k, str) for k in wanted):
        return list(wanted)
    return []


def load_automation(data: Mapping[str, Any]) -> dict[str, Any]:
    """A validated automation definition, or InvalidAutomation with per-field messages."""
    try:
        return AutomationSchema().load(data)  # type: ignore[no-any-return]  # marshmallow's load() returns Any
    except ValidationError as exc:
        raise InvalidAutomation(exc.normalized_messages()) from None


def next_fire_time(trigger: Mapping[str, Any], after: datetime) -> datetime:
    """The first scheduled time strictly after `after`, in the trigger's own time zone."""
    try:
        zone = ZoneInfo(trigger.get("timezone", "UTC"))
    except ZoneInfoNotFoundError:
        raise InvalidAutomation({"trigger": {"timezone": ["Not a known time zone."]}}) from None
    return croniter(trigger["cron"], after.astimezone(zone)).get_next(datetime)  # type: ignore[no-any-return]  # croniter is untyped


def resolve_step_input(step: Mapping[str, Any], outputs: Sequence[Mapping[str, Any]],
                       trigger: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The step's input with references replaced by earlier outputs and texts' fields filled in
    (from the trigger's fields and earlier outputs), validated in full. A text that cannot be read
    (saved before text with fields existed, say) is ValidationError, as an unfit value is."""
    resolved = {}
    for name, value in (step.get("input") or {}).items():
        if _is_ref(value):
            match = _REF.match(value["$ref"])
            assert match is not None
            resolved[name] = outputs[int(match.group(1))][match.group(2)]
        elif text_fields.has_fields(value):
            try:
                resolved[name] = text_fields.render_value(value, trigger=trigger or {}, outputs=outputs)
            except text_fields.TextFieldError as exc:
                raise ValidationError({name: [str(exc)]}) from None
        else:
            resolved[name] = value
    return CAPABILITIES[step["capability"]].input_checker.load(resolved)  # type: ignore[no-any-return]  # marshmallow's load() returns Any
