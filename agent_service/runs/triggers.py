"""Starting runs: manual, scheduled, webhook or poll, each queued in the same transaction as its record."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent_service.queue import job_values
from agent_service.runs import repository as runs
from shared.automations import repository as automations
from shared.db import NoResult
from shared.db.pool import Connection
from shared.errors import HapexError, NotFound

logger = logging.getLogger(__name__)


class RunRefused(HapexError):
    name = "run_refused"
    status = 409
    message = "This run cannot start."


class AutomationMissing(NotFound, RunRefused):
    message = "No such automation for this client."


class AutomationPaused(RunRefused):
    name = "automation_paused"
    message = "The automation is paused; reconnect what it needs, then resume it."


class BudgetExhausted(RunRefused):
    name = "budget_exhausted"
    message = "This month's budget is used up; the run was not started."


class NeedsNewItem(RunRefused):
    message = ("This automation runs once for each new item its trigger finds, with that item's fields; "
               "it cannot run without one.")


@dataclass(frozen=True)
class StartedRun:
    run_id: uuid.UUID
    status: str
    # A retry's first step to run (from 0): the steps before it reuse the failed run's outputs.
    from_step: int = 0


def month_to_date(conn: Connection) -> tuple[int | None, int]:
    row = runs.month_to_date_spend(conn)
    if row is None:
        return None, 0
    return row["budget"], int(row["spent"])


def start_run(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID, trigger_kind: str,
              scheduled_for: datetime | None = None, trigger_item: str | None = None,
              automation: Mapping[str, Any] | None = None, spend: tuple[int | None, int] | None = None,
              next_run_at: datetime | None = None) -> StartedRun | None:
    """Record a run and queue its job atomically; None when this schedule slot (or poll item) already ran.

    Over budget, a manual start is refused (BudgetExhausted) and a scheduled one is
    recorded as cancelled with the reason, so the client sees why it did not run.

    The scheduler, firing many slots in one transaction, passes what it already holds: the
    `automation` row it locked (status, version, trigger, steps; read here otherwise), the
    client's `spend` (month_to_date, read once per client per batch: a run started in the same
    transaction has spent nothing, since a run costs only once a worker executes it, which it
    cannot before the transaction commits), and the schedule's `next_run_at`, set in the same
    statement as the run, its steps and its job.
    """
    if automation is None:
        try:
            automation = automations.get_automation(conn, automation_id=automation_id)
        except NoResult:
            raise AutomationMissing() from None
    if automation["status"] == "deleted":
        raise AutomationMissing()
    if automation["status"] == "paused":
        raise AutomationPaused()
    if automation["status"] == "archived":
        raise RunRefused("The automation is archived; restore it to run it.")
    if trigger_kind != "manual" and automation["status"] != "enabled":
        raise RunRefused("The automation is not enabled.")
    if (automation["trigger"] or {}).get("kind") == "poll" and trigger_item is None:
        raise NeedsNewItem()  # "Run now" would fill every {{ trigger.* }} field with nothing
    budget, spent = month_to_date(conn) if spend is None else spend
    over_budget = budget is not None and spent >= budget
    if over_budget and trigger_kind == "manual":
        raise BudgetExhausted()
    run_id = uuid.uuid4()
    values: dict[str, Any] = {
        "client_id": client_id, "run_id": run_id, "automation_id": automation_id,
        "automation_version": automation["version"], "trigger_kind": trigger_kind,
        "scheduled_for": scheduled_for, "trigger_item": trigger_item, "status": "queued", "error_class": None,
        "error_message": None,
    }
    if over_budget:
        values.update(status="cancelled", error_class="budget_exhausted",
                      error_message=BudgetExhausted.message)
    job = job_values("execute_run", queue="runs", args={"client_id": client_id, "run_id": run_id},
                     lock=f"run:{run_id}")
    inserted = runs.queue_run(conn, capabilities=[step["capability"] for step in automation["steps"]],
                              next_run_at=next_run_at, job=job, **values)
    if inserted is None:
        return None
    if over_budget:
        logger.info("run not started: budget exhausted", extra={"client_id": client_id, "run_id": run_id})
        return StartedRun(run_id, "cancelled")
    logger.info("run queued", extra={"client_id": client_id, "run_id": run_id, "automation_id": automation_id})
    return StartedRun(run_id, "queued")
