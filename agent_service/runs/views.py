"""/v1/clients/<client_id>/automations/<automation_id>/runs: start a run now; and a run's
stored step outputs, which only the agent can open."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint

from agent_service import auth
from agent_service.contract import contract
from agent_service.db import get_db, get_runtime
from agent_service.runs.retry import NotRetryable, RunMissing, retry_run
from agent_service.runs.schemas import (
    OutputsPageAnswerSchema,
    OutputsPageSchema,
    RetriedRunSchema,
    RunOutputsSchema,
    RunRequestSchema,
    StartedRunSchema,
    StepTestAnswerSchema,
    StepTestSchema,
)
from agent_service.runs.step_test import StepTestFailed, StepTestInputInvalid, StepTestRefused, test_step
from agent_service.runs.triggers import AutomationMissing, AutomationPaused, BudgetExhausted, RunRefused, start_run
from agent_service.vault import get_vault, outputs
from shared.db import tenant_transaction
from shared.errors import NotFound

blueprint = Blueprint("runs", __name__, url_prefix="/v1/clients/<uuid:client_id>")
NO_STORE = {"Cache-Control": "no-store"}


@blueprint.post("/automations/<uuid:automation_id>/runs")
@contract(StartedRunSchema, status=202, body=RunRequestSchema, body_optional=True,
          refusals=(AutomationMissing, AutomationPaused, BudgetExhausted, RunRefused))
def run_now(client_id: uuid.UUID, automation_id: uuid.UUID, data: dict[str, Any]) -> Any:
    """Start a run of the automation now.

    No body (or trigger manual) is the client pressing Run now; trigger webhook is a call to the
    automation's webhook URL, which needs the automation enabled. Over this month's budget a
    webhook run is recorded as cancelled (202, status cancelled). A webhook's secret as the
    client's proof starts only a webhook run.
    """
    if auth.proof_kind() == "webhook" and data["trigger"] != "webhook":
        raise auth.ClientProofRefused()
    with tenant_transaction(get_db(), client_id) as conn:
        started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind=data["trigger"])
    assert started is not None
    return started


@blueprint.post("/steps/test")
@contract(StepTestAnswerSchema, body=StepTestSchema, refusals=(StepTestRefused, StepTestInputInvalid, StepTestFailed),
          headers=NO_STORE)
def step_test(client_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Run one read-only step once against the client's real connection and answer its output.

    Nothing is stored and no run is recorded; the credential's opening is in the access audit
    (reason step_test). A step that writes, or a Claude step, is refused.
    """
    return {"output": test_step(get_runtime(), client_id=client_id, capability_key=data["capability"],
                                given=data["input"])}


class RunNotFound(NotFound):
    message = "This client has no such run."


@blueprint.post("/runs/<uuid:run_id>/retry")
@contract(RetriedRunSchema, status=202, refusals=(RunMissing, NotRetryable, AutomationMissing, AutomationPaused,
                                                  BudgetExhausted, RunRefused))
def retry(client_id: uuid.UUID, run_id: uuid.UUID) -> Any:
    """Retry a failed run: a new run, linked to it, from the failed step when the automation stores
    outputs (reusing those of the steps before it), otherwise from the start. A second press
    answers with the retry already made. A run of an archived automation is refused, and one of a
    deleted automation (its records kept) is not found: neither runs again."""
    with tenant_transaction(get_db(), client_id) as conn:
        return retry_run(conn, get_vault(), client_id=client_id, run_id=run_id)


@blueprint.get("/runs/<uuid:run_id>/outputs")
@contract(RunOutputsSchema, refusals=(RunNotFound,), headers=NO_STORE)
def run_outputs(client_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
    """The run's stored step outputs, decrypted for its client (only when it chose to store them).

    Each output is sealed with AES-256-GCM under the credential keys and bound to its client, run
    and step; one that fails to decrypt is listed with output null and unreadable true.
    """
    with tenant_transaction(get_db(), client_id) as conn:
        if not outputs.run_exists(conn, run_id=run_id):
            raise RunNotFound()
        stored = get_vault().open_step_outputs(conn, client_id=client_id, run_id=run_id)
    return {"run_id": run_id, "outputs": [item.as_json() for item in stored]}


@blueprint.get("/outputs")
@contract(OutputsPageAnswerSchema, query=OutputsPageSchema, headers=NO_STORE)
def client_outputs(client_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Every stored step output of the client, a page at a time (its data export takes them all).

    Pass a page's next as after_run and after_step for the following page.
    """
    after = None if data["after_run"] is None else (data["after_run"], data["after_step"])
    with tenant_transaction(get_db(), client_id) as conn:
        stored = get_vault().open_client_outputs(conn, client_id=client_id, after=after, limit=data["limit"])
    last = stored[-1] if len(stored) == data["limit"] else None
    return {"outputs": [item.as_json() for item in stored],
            "next": None if last is None else {"after_run": last.run_id, "after_step": last.step_index}}
