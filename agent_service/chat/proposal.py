"""Checking what the model proposes, and describing a valid proposal from the catalog.

The model's tool input is data like any other client-facing input: it is validated with the
same marshmallow schemas as a hand-built automation (shared.automations.load_automation).
Its scopes are never taken from the model: they are derived from the catalog, and a proposal
that names a scope beyond the minimal set its capabilities need is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_service.chat.prompt import MAX_MESSAGE_CHARACTERS
from shared.automations import InvalidAutomation, load_automation
from shared.catalog import CAPABILITIES, PROVIDERS, AuthKind, poll_trigger_of, required_providers, required_scopes

_PROPOSAL_KEYS = {"automation", "message", "scopes"}
_AUTOMATION_KEYS = {"name", "trigger", "steps"}
_REF = re.compile(r"^steps\.(\d{1,2})\.([a-z_][a-z0-9_]{0,40})$")
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_VALUE_CHARACTERS = 120


@dataclass
class CheckedProposal:
    """A proposal as the model gave it: either valid (`automation`) or with `problems` to repair."""

    automation: dict[str, Any] | None
    message: str = ""
    problems: list[str] = field(default_factory=list)


def check_proposal(tool_input: Any) -> CheckedProposal:
    """Validate the model's propose_automation input against the catalog; never raises."""
    if not isinstance(tool_input, Mapping) or not isinstance(tool_input.get("automation"), Mapping):
        return CheckedProposal(None, problems=["The input needs an `automation` object and a `message`."])
    message = tool_input.get("message")
    message = message.strip()[:MAX_MESSAGE_CHARACTERS] if isinstance(message, str) else ""
    problems = [f"`{key}` is not a field of propose_automation." for key in sorted(set(tool_input) - _PROPOSAL_KEYS)]
    automation = dict(tool_input["automation"])
    problems += [f"`automation.{key}` is not a field of an automation proposal; leave it out."
                 for key in sorted(set(automation) - _AUTOMATION_KEYS)]
    steps = automation.get("steps")
    unknown = sorted({str(step.get("capability")) for step in steps if isinstance(step, Mapping)
                      and step.get("capability") not in CAPABILITIES}) if isinstance(steps, list) else []
    problems += [f"`{key}` is not a capability in Hapex's catalog; use only the catalog's capabilities, "
                 "or ask the client about what the catalog cannot do." for key in unknown]
    if problems:
        return CheckedProposal(None, message, problems)
    try:
        loaded = load_automation(automation)
    except InvalidAutomation as invalid:
        return CheckedProposal(None, message, list(_flatten(invalid.messages)))
    problems = scope_problems(tool_input.get("scopes"), loaded["steps"], loaded.get("trigger"))
    if problems:
        return CheckedProposal(None, message, problems)
    return CheckedProposal(loaded, message)


def scope_problems(named: Any, steps: list[dict[str, Any]], trigger: Any = None) -> list[str]:
    """Any scope the model names beyond the catalog's minimal set for these steps, as refusals."""
    if named is None:
        return []
    minimal = required_scopes(steps, trigger)
    wanted: list[tuple[str, str]] = []
    if isinstance(named, Mapping):
        for provider, scopes in named.items():
            items = scopes if isinstance(scopes, list) else [scopes]
            wanted += [(str(provider), _scope_name(item)) for item in items]
    elif isinstance(named, list):
        wanted += [("", _scope_name(item)) for item in named]
    else:
        wanted.append(("", str(named)))
    allowed = {(p, s) for p, scopes in minimal.items() for s in scopes}
    allowed_names = {s for _, s in allowed}
    refused = sorted({scope for provider, scope in wanted
                      if ((provider, scope) not in allowed if provider else scope not in allowed_names)})
    return [f"The scope `{scope}` is wider than these steps need. Hapex derives scopes from the catalog; "
            "leave `scopes` out." for scope in refused]


def _scope_name(item: Any) -> str:
    if isinstance(item, Mapping):
        return str(item.get("scope") or item.get("name") or "")
    return str(item)


def _flatten(messages: Any, path: str = "") -> list[str]:
    """Marshmallow's nested messages as `where: what` lines the model can act on."""
    if isinstance(messages, Mapping):
        lines = []
        for key, value in messages.items():
            lines += _flatten(value, f"{path}.{key}" if path else str(key))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [line for item in messages for line in _flatten(item, path)]
    return [f"{path}: {messages}"]


def scopes_by_provider(steps: list[dict[str, Any]], trigger: Any = None) -> dict[str, list[dict[str, str]]]:
    """What consent each OAuth provider will ask for, from the catalog: scope, read/write, purpose."""
    shown: dict[str, list[dict[str, str]]] = {}
    for provider_key, scopes in required_scopes(steps, trigger).items():
        provider = PROVIDERS[provider_key]
        shown[provider_key] = [
            {"scope": name, "access": str(provider.scope(name).access), "purpose": provider.scope(name).purpose}
            for name in scopes
        ]
    return shown


def providers_to_connect(steps: list[dict[str, Any]], trigger: Any = None) -> list[str]:
    """The providers the client must connect before the automation can run."""
    return [key for key in required_providers(steps, trigger) if PROVIDERS[key].auth_kind is not AuthKind.HAPEX_KEY]


def plain_words(automation: Mapping[str, Any]) -> str:
    """The automation as sentences built from the catalog, one line for the trigger and one per step."""
    lines = [_trigger_sentence(automation.get("trigger") or {"kind": "manual"})]
    for index, step in enumerate(automation["steps"], 1):
        capability = CAPABILITIES[step["capability"]]
        provider = PROVIDERS[capability.provider]
        line = f"{index}. {capability.title} ({provider.name})"
        details = [f"{name.replace('_', ' ')}: {_describe_value(value)}"
                   for name, value in (step.get("input") or {}).items()]
        if details:
            line += ": " + "; ".join(details)
        lines.append(line + ".")
    return "\n".join(lines)


def _trigger_sentence(trigger: Mapping[str, Any]) -> str:
    kind = trigger.get("kind")
    if kind == "webhook":
        return "Runs when its webhook address is called, once you enable it."
    poll = poll_trigger_of(trigger)
    if poll is not None:
        return (f"Runs once for each {poll.in_a_sentence}, "
                f"checked every {trigger.get('every_minutes', 15)} minutes, once you enable it.")
    if kind != "schedule":
        return "Runs when you start it."
    zone = trigger.get("timezone", "UTC")
    return f"Runs {_cron_in_words(str(trigger.get('cron', '')))} ({zone} time), once you enable it."


def _cron_in_words(cron: str) -> str:
    parts = cron.split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2] == "*" and parts[3] == "*":
        at = f"at {int(parts[1]):02d}:{int(parts[0]):02d}"
        day = parts[4]
        if day == "*":
            return f"every day {at}"
        if day == "1-5":
            return f"every weekday {at}"
        if day.isdigit() and int(day) <= 7:
            return f"every {_DAYS[int(day) % 7]} {at}"
    return f"on the schedule “{cron}”"


def _describe_value(value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"$ref"}:
        match = _REF.match(str(value["$ref"]))
        if match:
            return f"the {match.group(2).replace('_', ' ')} from step {int(match.group(1)) + 1}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _VALUE_CHARACTERS:
        text = text[: _VALUE_CHARACTERS - 1] + "…"
    return f"“{text}”" if isinstance(value, str) else text
