"""Firing schedules: each due slot becomes exactly one run, however many workers look.

The automation row is locked while its slots are planned, and runs carry a unique
(automation, scheduled_for) key, so two workers cannot both start the same slot; a worker
that was down catches up the slots it missed, up to a limit.

The 08:00 rush (tests/bench/bench_rush.py, docs/capacity.md): thousands of schedules due in
the same minute. The job used to read at most 500 due schedules a minute and fire each slot in
its own transaction, so 10,000 took twenty minutes. Now one call fires every due slot it can
within SCHEDULER_BUDGET_SECONDS (the next minute's call carries on), reading DUE_BATCH at a
time, and commits SLOTS_PER_TRANSACTION slots of any clients per transaction: app.client_id is
set for each slot's client (once for consecutive slots of one client: each read is sorted by
client), so row-level security still confines its statements to its own client.
Should a slot fail, its batch is undone and fired again with a savepoint per slot, so that the
failing one is undone alone. SCHEDULER_THREADS batches are in flight at once, each on its own
pooled connection: one chain of a slot's statements waits on round trips more than it computes.
A slot is two statements: its automation locked (the row start_run then uses, not read again),
and its run, steps, job and next next_run_at in one; a client's month-to-date spend is read once
per batch (the batch's own runs have spent nothing: they cost only once a worker executes them,
after the commit; what other runs spend meanwhile counts from the next batch on, as it would have
had this batch started a moment earlier). A slot's runs are visible to the workers when its batch
commits.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from psycopg import Connection

from agent_service.runs import repository as runs
from agent_service.runs.triggers import RunRefused, month_to_date, start_run
from agent_service.runtime import AgentRuntime
from shared.automations import next_fire_time

logger = logging.getLogger(__name__)
MAX_CATCH_UP = 24
DUE_BATCH = 500
SLOTS_PER_TRANSACTION = 20
# Then the next minute's job carries on with what is left (the job runs once a minute).
SCHEDULER_BUDGET_SECONDS = 55.0
# Batches in flight at once; with the job's own connection, within the worker's pool (AGENT_DB_POOL_MAX, 10).
SCHEDULER_THREADS = 3


def fire_due_schedules(rt: AgentRuntime, now: datetime, *, limit: int = DUE_BATCH,
                       per_transaction: int = SLOTS_PER_TRANSACTION, budget_seconds: float = SCHEDULER_BUDGET_SECONDS,
                       threads: int = SCHEDULER_THREADS, clock: Callable[[], float] = time.monotonic) -> int:
    """Start a run for every due slot of every enabled schedule; how many runs started."""
    deadline = clock() + budget_seconds
    started = 0
    seen: set[uuid.UUID] = set()  # tried in this call: one that failed is not tried again until the next minute

    def fire(batch: list[dict[str, Any]]) -> int:
        return _fire_batch(rt, batch, now) if clock() < deadline else 0

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scheduler") as pool:
        while clock() < deadline:
            with rt.db.transaction() as conn:
                due = [row for row in runs.due_schedules(conn, now=now, limit=limit)
                       if row["automation_id"] not in seen]
            if not due:
                break
            seen.update(row["automation_id"] for row in due)
            # All of them fire in this call; by client, a batch's slots share the client's setting and spend.
            due.sort(key=lambda row: row["client_id"])
            batches = [due[first:first + per_transaction] for first in range(0, len(due), per_transaction)]
            started += sum(pool.map(fire, batches))
    return started


class _SlotFailed(Exception):
    """A slot of a batch failed part-way: the batch is undone and fired again slot by slot."""


# What a client has spent this month and its budget (month_to_date), read once per client per batch.
Spend = dict[uuid.UUID, tuple[int | None, int]]


def _set_client(conn: Connection[Any], client_id: uuid.UUID) -> None:
    conn.execute("SELECT set_config('app.client_id', %s, true)", [str(client_id)])


def _fire_batch(rt: AgentRuntime, rows: list[dict[str, Any]], now: datetime) -> int:
    """The slots of these automations in one transaction; if one fails, again with a savepoint each.

    Most batches have no failing slot, and a savepoint costs two round trips a slot, so a batch
    is first fired without them; a slot that fails there undoes the whole batch (nothing of it
    was committed), which is then fired slot by slot in savepoints, so the others still start.
    app.client_id is set for each slot whose client differs from the previous slot's (the rows
    come sorted by client), so every statement of a slot runs as its own client.
    """
    spend: Spend = {}
    try:
        with rt.db.transaction() as conn:
            started = 0
            client: uuid.UUID | None = None
            for row in rows:
                if row["client_id"] != client:
                    _set_client(conn, row["client_id"])
                    client = row["client_id"]
                try:
                    started += _fire_one(conn, row["client_id"], row["automation_id"], now, spend)
                except RunRefused:
                    continue  # refused before it wrote anything
                except Exception as exc:
                    raise _SlotFailed() from exc
        return started
    except _SlotFailed:
        return _fire_batch_in_savepoints(rt, rows, now, spend)
    except Exception:
        logger.exception("schedules could not fire", extra={"count": len(rows)})
        return 0


def _fire_batch_in_savepoints(rt: AgentRuntime, rows: list[dict[str, Any]], now: datetime, spend: Spend) -> int:
    """The slots of these automations in one transaction, each in its own savepoint.

    app.client_id is set outside the savepoints: one rolled back would otherwise take it back
    to the previous slot's client.
    """
    started = 0
    try:
        with rt.db.transaction() as conn:
            client: uuid.UUID | None = None
            for row in rows:
                try:
                    if row["client_id"] != client:
                        client = None
                        _set_client(conn, row["client_id"])
                        client = row["client_id"]
                    with conn.transaction():
                        started += _fire_one(conn, row["client_id"], row["automation_id"], now, spend)
                except RunRefused:
                    continue
                except Exception:
                    logger.exception("schedule could not fire", extra={"client_id": row["client_id"],
                                                                      "automation_id": row["automation_id"]})
    except Exception:
        # The batch's commit (or its connection) failed: none of its runs exist; the next minute retries them.
        logger.exception("schedules could not fire", extra={"count": len(rows)})
        return 0
    return started


def _fire_one(conn: Connection[Any], client_id: uuid.UUID, automation_id: uuid.UUID, now: datetime,
              spend: Spend) -> int:
    """The due slots of one automation, locked: ~2 statements (lock; run, steps, job and next slot)."""
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
    if not slots:
        return 0  # another worker's tick fired it since it was read as due
    if client_id not in spend:
        spend[client_id] = month_to_date(conn)
    started = 0
    for index, slot in enumerate(slots):
        last = index == len(slots) - 1
        if start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="schedule",
                     scheduled_for=slot, automation=automation, spend=spend[client_id],
                     next_run_at=next_at if last else None) is not None:
            started += 1
    return started
