"""Retrying a failed run: a new run linked to it, reusing the outputs it stored where it can.

Kept apart from triggers.py because it opens stored outputs (the vault), which the chat, a user
of triggers.py, must never reach.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from agent_service.queue import defer
from agent_service.runs import repository as runs
from agent_service.runs.triggers import (
    AutomationMissing,
    AutomationPaused,
    BudgetExhausted,
    RunRefused,
    StartedRun,
    month_to_date,
)
from agent_service.vault import Vault
from shared.automations import repository as automations
from shared.db import NoResult
from shared.db.pool import Connection
from shared.errors import NotFound

logger = logging.getLogger(__name__)


class RunMissing(NotFound, RunRefused):
    message = "This client has no such run."


class NotRetryable(RunRefused):
    name = "run_not_retryable"
    message = "Only a failed run can be retried."


def retry_run(conn: Connection, vault: Vault, *, client_id: uuid.UUID, run_id: uuid.UUID) -> StartedRun:
    """A new run of a failed one, linked to it, of the same automation version: from the failed
    step when the automation stores outputs and every step before it has its output stored
    (sealed again under the new run, recorded as reused), otherwise from the start. Pressing Retry
    twice gives the one retry already made, not a second."""
    failed = runs.lock_failed_run(conn, run_id=run_id)
    if failed is None:
        raise RunMissing()
    if failed["status"] != "failed":
        raise NotRetryable()
    existing = runs.retry_of_run(conn, run_id=run_id)
    if existing is not None:
        return StartedRun(existing["run_id"], "queued" if existing["status"] == "queued" else existing["status"])
    try:
        automation = automations.get_automation(conn, automation_id=failed["automation_id"])
    except NoResult:
        raise AutomationMissing() from None
    if automation["status"] == "deleted":
        raise AutomationMissing()  # deleted keeping its records: they are kept to read, never to run again
    if automation["status"] == "paused":
        raise AutomationPaused()
    if automation["status"] == "archived":
        raise RunRefused("The automation is archived; restore it to run it.")
    budget, spent = month_to_date(conn)
    if budget is not None and spent >= budget:
        raise BudgetExhausted()
    definition = runs.run_definition(conn, automation_id=failed["automation_id"], version=failed["automation_version"])
    recorded = runs.recorded_steps(conn, run_id=run_id)
    first_failed = next((s["step_index"] for s in recorded if s["status"] == "failed"), 0)
    reused: list[dict[str, Any]] = []
    if definition["store_outputs"] and first_failed > 0:
        stored = {item.step_index: item.output for item in vault.open_step_outputs(conn, client_id=client_id,
                                                                                   run_id=run_id)}
        candidates = [stored.get(index) for index in range(first_failed)]
        if all(output is not None for output in candidates):
            reused = candidates  # type: ignore[assignment]  # no output is None: checked above
    new_run = uuid.uuid4()
    runs.insert_retry_run(conn, client_id=client_id, run_id=new_run, automation_id=failed["automation_id"],
                          automation_version=failed["automation_version"], retry_of=run_id)
    for index, step in enumerate(definition["steps"]):
        runs.insert_run_step(conn, client_id=client_id, run_id=new_run, step_index=index,
                             capability=step["capability"], idempotency_key=f"{new_run}:{index}")
    for index, output in enumerate(reused):
        runs.reuse_step(conn, run_id=new_run, step_index=index)
        vault.seal_step_output(conn, client_id=client_id, run_id=new_run, step_index=index, output=output)
    defer(conn, "execute_run", queue="runs", args={"client_id": client_id, "run_id": new_run}, lock=f"run:{new_run}")
    logger.info("run retried", extra={"client_id": client_id, "run_id": new_run, "count": len(reused)})
    return StartedRun(new_run, "queued", len(reused))
