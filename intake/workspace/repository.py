"""Reading the signed-in client's own rows; every function takes a tenant connection.

Row-level security already hides other clients' rows; each query also names the client,
which keeps it on the client-led indexes and says plainly whose rows it reads.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, fetch_all, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))
RECENT_RUNS = 100


def list_automations(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_automations"], client_id=client_id)


def get_automation(
    conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID
) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_automation"], client_id=client_id,
                          automation_id=automation_id)


def list_connections(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_connections"], client_id=client_id)


def get_connection(
    conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID
) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_connection"], client_id=client_id,
                          connection_id=connection_id)


def list_runs(
    conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID | None = None,
    limit: int = RECENT_RUNS,
) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_runs"], client_id=client_id, automation_id=automation_id,
                     limit=limit)


def get_run(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_run"], client_id=client_id, run_id=run_id)


def list_run_steps(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_run_steps"], client_id=client_id, run_id=run_id)


def costs_this_month(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["costs_this_month"], client_id=client_id)


def monthly_budget(conn: Connection, *, client_id: uuid.UUID) -> int | None:
    row = fetch_optional(conn, QUERIES["monthly_budget"], client_id=client_id)
    return None if row is None else row["monthly_budget_microusd"]
