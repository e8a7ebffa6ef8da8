"""Reading the signed-in client's connections and what its automations need; tenant connections only.

The intake only reads connections: the agent service creates, widens and revokes them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, fetch_all, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def list_connections(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_connections"], client_id=client_id)


def get_connection(conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_connection"], client_id=client_id, connection_id=connection_id)


def active_connection_for(conn: Connection, *, client_id: uuid.UUID, provider: str) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["active_connection_for"], client_id=client_id, provider=provider)


def broken_connection_for(conn: Connection, *, client_id: uuid.UUID, provider: str) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["broken_connection_for"], client_id=client_id, provider=provider)


def list_automation_steps(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_automation_steps"], client_id=client_id)


def get_automation_steps(
    conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID
) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_automation_steps"], client_id=client_id, automation_id=automation_id)


def automation_statuses(
    conn: Connection, *, client_id: uuid.UUID, automation_ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    if not automation_ids:
        return []
    return fetch_all(conn, QUERIES["automation_statuses"], client_id=client_id, automation_ids=automation_ids)
