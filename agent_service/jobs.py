"""The job queue (procrastinate on PostgreSQL) and the jobs the agent's workers run.

Job arguments carry ids only, never customer content: the queue tables are shared by
every client and sit outside row-level security.
"""

from __future__ import annotations

import logging

import procrastinate

from shared.db import Database

logger = logging.getLogger(__name__)

tasks = procrastinate.Blueprint()

_state: dict[str, Database] = {}


def build_queue(conninfo: str, database: Database) -> procrastinate.App:
    """The procrastinate app of this process, connected as the agent role."""
    _state["db"] = database
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
    )
    app.add_tasks_from(tasks, namespace="hapex")
    return app


def get_db() -> Database:
    return _state["db"]


@tasks.periodic(cron="*/10 * * * *", periodic_id="prune_expired_sessions")
@tasks.task(name="prune_expired_sessions", queue="maintenance", pass_context=False)
def prune_expired_sessions(timestamp: int) -> int:
    """Delete sessions past their expiry so a stolen, expired cookie finds nothing."""
    with get_db().transaction() as conn:
        row = conn.execute("SELECT hapex_prune_expired_sessions()").fetchone()
    deleted = int(row[0]) if row else 0
    logger.info("expired sessions pruned", extra={"count": deleted})
    return deleted
