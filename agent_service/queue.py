"""Queueing procrastinate jobs from inside our own transactions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.db import QuerySet, fetch_one
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queue.sql"))


def defer(conn: Connection, task: str, *, queue: str, args: dict[str, Any], lock: str | None = None,
          scheduled_at: datetime | None = None) -> int:
    """Queue `hapex:<task>` in the caller's transaction; arguments must be ids, never content.

    The job then exists exactly when the rows it acts on do: no run without its job, no job
    for a run that was rolled back.
    """
    row = fetch_one(conn, QUERIES["defer_job"], queue=queue, task=f"hapex:{task}", lock=lock, queueing_lock=lock,
                    args=json.dumps(args, default=str), scheduled_at=scheduled_at)
    return int(row["job_ids"][0])
