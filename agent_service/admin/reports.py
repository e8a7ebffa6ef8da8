"""The operator's reports across clients, for the admin API and `hapex admin`.

Client tables are read only through the SECURITY DEFINER functions of migration 0011,
which return ids, the client's name, counts, costs and error classes: never an email
address, an automation's name, a run's message or any content. The queue tables hold no
customer data and are read directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_service.admin.schemas import Period
from shared.db import QuerySet, fetch_all, fetch_one
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("reports.sql"))
# A worker that has not sent a heartbeat for this long is probably gone.
STALE_WORKER_SECONDS = 60


def overview(conn: Connection) -> dict[str, Any]:
    """How many clients, connections, recent runs and waiting jobs there are: counts only."""
    return fetch_one(conn, QUERIES["overview"])


def client_report(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """Every client with its runs, failed runs, failure rate and cost over the period."""
    rows = fetch_all(conn, QUERIES["client_report"], start=period.start, end=period.end)
    for row in rows:
        runs, failed = int(row["runs"]), int(row["failed_runs"])
        row.update(runs=runs, failed_runs=failed, cost_microusd=int(row["cost_microusd"]),
                   failure_rate=round(failed / runs, 4) if runs else None)
    return rows


def reauth_connections(conn: Connection) -> list[dict[str, Any]]:
    """Connections in needs_reauth, longest waiting first."""
    return fetch_all(conn, QUERIES["reauth_connections"])


def failing_automations(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """Automations with failed runs over the period, or paused, most failures first."""
    rows = fetch_all(conn, QUERIES["failing_automations"], start=period.start, end=period.end)
    for row in rows:
        row.update(runs=int(row["runs"]), failed_runs=int(row["failed_runs"]))
    return rows


def queue_report(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Jobs by queue and status, and each worker's last heartbeat."""
    jobs = fetch_all(conn, QUERIES["queue_depth"])
    for row in jobs:
        row["jobs"] = int(row["jobs"])
    workers = fetch_all(conn, QUERIES["worker_heartbeats"])
    for row in workers:
        row.update(jobs_running=int(row["jobs_running"]),
                   stale=row["seconds_since_heartbeat"] > STALE_WORKER_SECONDS)
    return {"jobs": jobs, "workers": workers}
