""""Test this step" in the builder, without JavaScript.

The step's input is taken from the posted form as the builder holds it; each field it uses
(`{{ steps.1.text }}`, or a whole earlier output) is replaced by a sample value the client types
next to the button. A step that only reads through one of the client's connections is then run
once by the agent against that real connection and its output is shown (not stored; the page
is not cached). A step that writes is never run: the test shows what it would send. A Claude
step, billed per call, is shown the same way; a condition is worked out here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from intake import agent_client
from intake.agent_client import AgentClient, AgentRefused, AgentUnavailable
from intake.automations.forms import AutomationDraft, definition_from_draft
from shared.automations import text_fields
from shared.automations.conditions import evaluate
from shared.catalog import CONDITION, PROVIDERS, AuthKind, Capability
from shared.request_input import UnreadableJSON, load_json

MAX_SAMPLE_CHARS = 5_000
SAMPLE_PREFIX = "steps-{index}-sample-"
AGENT_UNREACHABLE = "The service that runs steps could not be reached; nothing was run. Try again shortly."


@dataclass(frozen=True)
class SampleField:
    """A field the step uses, and the sample value typed for it."""

    name: str  # steps.1.text, trigger.started_at
    value: str

    @property
    def written(self) -> str:
        return "{{ " + self.name + " }}"


@dataclass(frozen=True)
class StepTestResult:
    """What the test shows: the output, what would be sent, a condition's outcome, or why it could not run."""

    index: int
    kind: str  # output, would_send, condition, error
    text: str = ""
    note: str = ""

    def __repr__(self) -> str:  # the output is the client's content: never in a log or traceback
        return f"StepTestResult(index={self.index}, kind={self.kind!r})"


def runs_for_real(capability: Capability) -> bool:
    """As the agent decides: only reading through a connection of the client's."""
    return (not capability.side_effect and capability.access == "read"
            and PROVIDERS[capability.provider].auth_kind is not AuthKind.HAPEX_KEY)


def button_label(capability: Capability | None) -> str:
    if capability is None or capability.key == CONDITION or runs_for_real(capability):
        return "Test this step"
    return "Show what this step would send"


def sample_fields(draft: AutomationDraft, index: int, form: Mapping[str, str]) -> list[SampleField]:
    """The fields step `index` uses (its texts' fields and whole earlier outputs), with their samples."""
    definition, _ = definition_from_draft(draft)
    step = definition["steps"][index]
    names: list[str] = []
    for value in step["input"].values():
        if isinstance(value, Mapping) and set(value) == {"$ref"}:
            parts = str(value["$ref"]).split(".")
            if len(parts) == 3 and parts[1].isdigit():
                names.append(f"steps.{int(parts[1]) + 1}.{parts[2]}")
        else:
            names += [reference.name for reference in text_fields.references_in(value)]
    prefix = SAMPLE_PREFIX.format(index=index)
    unique = list(dict.fromkeys(names))
    return [SampleField(name, form.get(prefix + name, "")[:MAX_SAMPLE_CHARS]) for name in unique]


def _sampled_input(step: Mapping[str, Any], samples: Mapping[str, str]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for key, value in step["input"].items():
        if isinstance(value, Mapping) and set(value) == {"$ref"}:
            parts = str(value["$ref"]).split(".")
            sample = samples.get(f"steps.{int(parts[1]) + 1}.{parts[2]}", "") if len(parts) == 3 and \
                parts[1].isdigit() else ""
            try:
                given[key] = load_json(sample)  # the door's limits: json.loads alone recursed into a 500
            except UnreadableJSON:
                raise
            except ValueError:
                given[key] = sample
        else:
            given[key] = text_fields.render_samples(value, samples)
    return given


def test_step(agent: AgentClient, client_id: Any, draft: AutomationDraft, index: int,
              form: Mapping[str, str]) -> StepTestResult:
    """Run or show step `index` of the draft with the samples posted for it."""
    capability = draft.steps[index].known
    if capability is None:
        return StepTestResult(index, "error", note="Choose a capability from the list first.")
    definition, unreadable = definition_from_draft(draft)
    if any(key.startswith(f"steps.{index}.") for key in unreadable):
        return StepTestResult(index, "error", note="An input of this step is not valid JSON; correct it first.")
    samples = {sample.name: sample.value for sample in sample_fields(draft, index, form)}
    try:
        given = _sampled_input(definition["steps"][index], samples)
    except text_fields.TextFieldError as exc:
        return StepTestResult(index, "error", note=str(exc))
    except UnreadableJSON as exc:
        return StepTestResult(index, "error", note=f"A sample value cannot be used: {exc}")
    try:
        data = capability.input_schema().load(given)
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(map(str, texts)) if isinstance(texts, list) else texts}"
                             for name, texts in exc.normalized_messages().items())
        return StepTestResult(index, "error", note=f"With these samples the input is not valid ({problems}). "
                                                   "Correct the step or the sample values.")
    if capability.key == CONDITION:
        outcome = evaluate(data["value"], data["operator"], data["compare_to"], data["compare_as"])
        note = "The condition holds: the run would go on." if outcome.passed else \
            "The condition does not hold: the run would stop here, as stopped by condition."
        if outcome.unreadable:
            note += f" A side is not a {data['compare_as']}."
        return StepTestResult(index, "condition", note=note)
    if not runs_for_real(capability):
        why = ("This step writes, so a test never runs it. This is what it would send:" if capability.side_effect
               else "A Claude step is billed per call, so a test does not run it. This is what it would be sent:")
        return StepTestResult(index, "would_send", json.dumps(given, indent=2, ensure_ascii=False, default=str),
                              note=why)
    try:
        output = agent.test_step(client_id, capability.key, given)
    except AgentUnavailable:
        return StepTestResult(index, "error", note=AGENT_UNREACHABLE)
    except AgentRefused as refused:
        if refused.name in (agent_client.STEP_TEST_REFUSED, agent_client.STEP_TEST_FAILED,
                            agent_client.STEP_TEST_INPUT_INVALID):
            return StepTestResult(index, "error", note=refused.message)
        return StepTestResult(index, "error", note=AGENT_UNREACHABLE)
    return StepTestResult(index, "output", json.dumps(output, indent=2, ensure_ascii=False),
                          note=f"What “{capability.title}” returned just now, from your real connection. "
                               "It is not stored.")
