"""What a client can do about a failed step or run: a link per error class, said in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import url_for


@dataclass(frozen=True)
class Fix:
    label: str
    href: str


_CONNECT = ("not_connected", "needs_reauth", "missing_scope", "credential_key_missing")
_EDIT = ("input_invalid", "provider_refused", "output_invalid", "step_failed", "webhook_refused")


def fix_for(error_class: str | None, run: Any, step_index: int | None = None) -> Fix | None:
    """The link that fixes this failure, or None (a retry, or nothing the client can change)."""
    if not error_class:
        return None
    automation = url_for("automations.automation", automation_id=run["automation_id"])
    if error_class in _CONNECT:
        label = {"not_connected": "Connect it", "missing_scope": "Grant the missing access"}.get(
            error_class, "Reconnect it")
        return Fix(label, automation + "#access")
    if error_class == "budget_exhausted":
        return Fix("Raise the monthly budget", url_for("automations.costs") + "#budget")
    if error_class in _EDIT or (error_class.startswith("provider_") and error_class != "provider_unavailable"):
        edit = url_for("automations.edit_automation", automation_id=run["automation_id"])
        return Fix("Edit the step", edit + (f"#step-{step_index + 1}" if step_index is not None else ""))
    return None
