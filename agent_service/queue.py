"""Queueing procrastinate jobs from inside our own transactions, and telling live workers from dead ones."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

from shared.db import QuerySet, fetch_one
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queue.sql"))


def defer(conn: Connection, task: str, *, queue: str, args: dict[str, Any], lock: str | None = None,
          scheduled_at: datetime | None = None) -> int:
    """Queue `hapex:<task>` in the caller's transaction; arguments must be ids, never content.

    The job then exists exactly when the rows it acts on do: no run without its job, no job
    for a run that was rolled back.
    """
    row = fetch_one(conn, QUERIES["defer_job"], **job_values(task, queue=queue, args=args, lock=lock,
                                                           scheduled_at=scheduled_at))
    return int(row["job_ids"][0])


def job_values(task: str, *, queue: str, args: dict[str, Any], lock: str | None = None,
               scheduled_at: datetime | None = None) -> dict[str, Any]:
    """The parameters of one job to defer: queue.sql's defer_job takes them, and so does a query that
    queues a job in the same statement as the rows it acts on (runs/queries.sql queue_run)."""
    return {"queue": queue, "task": f"hapex:{task}", "lock": lock, "queueing_lock": lock,
            "args": json.dumps(args, default=str), "scheduled_at": scheduled_at}


def succeeded_but_taken_lately(conn: Connection, *, lock: str, within_seconds: float) -> bool:
    """Whether the job under `lock` is marked succeeded though a worker took it within `within_seconds`.

    procrastinate lets any worker finish a job by its id: a worker that stalled, whose job was
    requeued and taken by another, marks that job succeeded when its own (superseded) execution
    stops, while the other worker is still carrying the run out. Only the run's time limit after
    that last take tells the two apart.
    """
    row = fetch_one(conn, QUERIES["job_taken_lately"], lock=lock, within_seconds=within_seconds)
    return bool(row["taken_lately"])


# Each live worker holds the advisory lock (LIVENESS_NAMESPACE, its worker id) on a connection of its
# own: a worker whose lock nobody holds has died, which PostgreSQL knows the moment its process is gone,
# long before its heartbeat goes stale. A new worker takes its lock within this many seconds.
LIVENESS_NAMESPACE = 0x4A50  # "HP"
LIVENESS_SETTLE_SECONDS = 2


async def dead_worker_ids(app: procrastinate.App) -> list[int]:
    rows = await app.connector.execute_query_all_async(
        QUERIES["dead_workers"], namespace=LIVENESS_NAMESPACE,
        settle_seconds=LIVENESS_SETTLE_SECONDS)
    return [int(row["worker_id"]) for row in rows]


async def hold_liveness_lock(conninfo: str, worker_id: int, *, check_every: float = 5.0) -> None:
    """Hold this worker's liveness lock until cancelled; raises when its connection is lost."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True,
                                                     application_name="hapex-worker-liveness") as conn:
        await conn.execute(QUERIES["hold_worker_lock"],
                           {"namespace": LIVENESS_NAMESPACE, "worker_id": worker_id})
        while True:
            await asyncio.sleep(check_every)
            await conn.execute("SELECT 1")
