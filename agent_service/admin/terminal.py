"""`hapex admin clients|reauth|failing|queue`: the admin API's reports, printed in a terminal.

The command connects with AGENT_DATABASE_URL (as hapex_agent, so through the same SECURITY
DEFINER functions as the API) rather than calling the API: it works wherever the agent's
environment is, without the admin token or a route to the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from marshmallow import ValidationError

from agent_service.admin import reports
from agent_service.admin.schemas import Period, load_period
from shared.db import Database

if TYPE_CHECKING:
    from agent_service.config import ReportsConfig

Column = tuple[str, str, Callable[[Any], str]]


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _usd(microusd: int) -> str:
    return f"${microusd / 1_000_000:,.2f}"


def _rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


CLIENT_COLUMNS: list[Column] = [
    ("client_id", "client_id", _text), ("name", "name", _text), ("runs", "runs", _text),
    ("failed", "failed_runs", _text), ("failure rate", "failure_rate", _rate), ("cost", "cost_microusd", _usd),
]
REAUTH_COLUMNS: list[Column] = [
    ("client_id", "client_id", _text), ("client", "client_name", _text), ("connection_id", "connection_id", _text),
    ("provider", "provider", _text), ("reason", "status_reason", _text), ("since", "since", _when),
    ("failed days", "health_failures", _text),
]
FAILING_COLUMNS: list[Column] = [
    ("client_id", "client_id", _text), ("client", "client_name", _text), ("automation_id", "automation_id", _text),
    ("status", "status", _text), ("runs", "runs", _text), ("failed", "failed_runs", _text),
    ("last failure", "last_failed_at", _when), ("error class", "last_error_class", _text),
]
JOB_COLUMNS: list[Column] = [
    ("queue", "queue_name", _text), ("status", "status", _text), ("jobs", "jobs", _text),
    ("oldest waiting since", "oldest_waiting_since", _when),
]
WORKER_COLUMNS: list[Column] = [
    ("worker", "worker_id", _text), ("last heartbeat", "last_heartbeat", _when),
    ("seconds ago", "seconds_since_heartbeat", _text), ("running", "jobs_running", _text),
    ("stale", "stale", lambda stale: "STALE" if stale else ""),
]


def print_table(out: TextIO, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str) -> None:
    if not rows:
        print(empty, file=out)
        return
    cells = [[render(row[key]) for _, key, render in columns] for row in rows]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, (header, _, _) in enumerate(columns)]
    print("  ".join(header.ljust(widths[i]) for i, (header, _, _) in enumerate(columns)).rstrip(), file=out)
    for line in cells:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip(), file=out)


def run_admin_command(out: TextIO, err: TextIO, report: str, *, since: str | None = None, until: str | None = None,
                      as_json: bool = False, config: ReportsConfig) -> int:
    """Print one report; 2 for a bad period, 1 when the database cannot be reached."""
    arguments = {key: value for key, value in (("since", since), ("until", until)) if value is not None}
    try:
        period = load_period(arguments)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        detail = "; ".join(f"--{name}: {' '.join(map(str, problems))}" for name, problems in messages.items())
        print(f"hapex: {detail} (use ISO dates, YYYY-MM-DD)", file=err)
        return 2
    database = Database(config.database_url, name="hapex-admin")
    try:
        database.open(timeout=10)
        with database.transaction() as conn:
            data = _fetch(conn, report, period)
    except Exception as exc:  # noqa: BLE001 - pool timeouts and psycopg errors alike
        print(f"hapex: cannot read the reports through AGENT_DATABASE_URL ({type(exc).__name__})", file=err)
        return 1
    finally:
        database.close()
    if as_json:
        print(json.dumps(data, default=str, indent=2), file=out)
        return 0
    _print(out, report, data)
    return 0


def _fetch(conn: Any, report: str, period: Period) -> dict[str, Any]:
    if report == "clients":
        return {**period.as_json(), "clients": reports.client_report(conn, period)}
    if report == "reauth":
        return {"connections": reports.reauth_connections(conn)}
    if report == "failing":
        return {**period.as_json(), "automations": reports.failing_automations(conn, period)}
    return reports.queue_report(conn)


def _print(out: TextIO, report: str, data: dict[str, Any]) -> None:
    if report == "clients":
        print(f"Clients from {data['since']} to {data['until']} (UTC, inclusive)", file=out)
        print_table(out, data["clients"], CLIENT_COLUMNS, "No clients.")
    elif report == "reauth":
        print("Connections waiting for their client to reconnect them", file=out)
        print_table(out, data["connections"], REAUTH_COLUMNS, "None: every connection works.")
    elif report == "failing":
        print(f"Automations with failed runs from {data['since']} to {data['until']}, or paused", file=out)
        print_table(out, data["automations"], FAILING_COLUMNS, "None.")
    else:
        print("Jobs by queue and status", file=out)
        print_table(out, data["jobs"], JOB_COLUMNS, "No jobs.")
        print("\nWorkers", file=out)
        print_table(out, data["workers"], WORKER_COLUMNS, "No worker has registered: start `hapex serve worker`.")
