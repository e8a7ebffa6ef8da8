"""Firing schedules: each due slot becomes exactly one run, however many workers look.

The automation row is locked while its slots are planned, and runs carry a unique
(automation, scheduled_for) key, so two workers cannot both start the same slot; a worker
that was down catches up the slots it missed, up to a limit.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from agent_service.runs import repository as runs
from agent_service.runs.triggers import RunRefused, start_run
from agent_service.runtime import AgentRuntime
from shared.automations import next_fire_time
from shared.db import tenant_transaction

logger = logging.getLogger(__name__)
MAX_CATCH_UP = 24


def fire_due_schedules(rt: AgentRuntime, now: datetime, *, limit: int = 500) -> int:
    """Start a run for every due slot of every enabled schedule; how many runs started."""
    with rt.db.transaction() as conn:
        due = runs.due_schedules(conn, now=now, limit=limit)
    started = 0
    for row in due:
        try:
            started += _fire_one(rt, row["client_id"], row["automation_id"], now)
        except RunRefused:
            continue
        except Exception:
            logger.exception("schedule could not fire", extra={"client_id": row["client_id"],
                                                              "automation_id": row["automation_id"]})
    return started


def _fire_one(rt: AgentRuntime, client_id: uuid.UUID, automation_id: uuid.UUID, now: datetime) -> int:
    started = 0
    with tenant_transaction(rt.db, client_id) as conn:
        automation = runs.lock_automation(conn, automation_id=automation_id)
        if automation is None or automation["status"] != "enabled" or automation["trigger"].get("kind") != "schedule":
            return 0
        trigger = automation["trigger"]
        next_at = automation["next_run_at"]
        if next_at is None:
            runs.set_next_run_at(conn, automation_id=automation_id, next_run_at=next_fire_time(trigger, now))
            return 0
        slots: list[datetime] = []
        while next_at <= now and len(slots) < MAX_CATCH_UP:
            slots.append(next_at)
            next_at = next_fire_time(trigger, next_at)
        if next_at <= now:
            next_at = next_fire_time(trigger, now)
        for slot in slots:
            if start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="schedule",
                         scheduled_for=slot) is not None:
                started += 1
        runs.set_next_run_at(conn, automation_id=automation_id, next_run_at=next_at)
    return started
