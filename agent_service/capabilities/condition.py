"""The "continue only if" step: one comparison, in Hapex, with no provider call."""

from __future__ import annotations

from typing import Any

from agent_service.capabilities.base import StepContext, StepResult
from shared.automations.conditions import evaluate
from shared.secret import Secret


def continue_if(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """passed says whether the run goes on; `unreadable` counts a side that was not of the chosen type."""
    outcome = evaluate(data["value"], data["operator"], data["compare_to"], data["compare_as"])
    return StepResult(output={"passed": outcome.passed}, counts={"passed": int(outcome.passed),
                                                                 "unreadable": int(outcome.unreadable)})
