"""Reading and writing poll states and the items seen; every function takes a tenant connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def due_polls(conn: Connection, *, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Across clients (outside any tenant): which poll automations are due."""
    return fetch_all(conn, QUERIES["due_polls"], now=now, limit=limit)


def claim_state(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID) -> dict[str, Any] | None:
    """The poll state, locked until commit; None while another worker holds it."""
    execute(conn, QUERIES["add_state"], client_id=client_id, automation_id=automation_id)
    return fetch_optional(conn, QUERIES["claim_state"], automation_id=automation_id)


def poll_automation(conn: Connection, *, automation_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["poll_automation"], automation_id=automation_id)


def prime_state(conn: Connection, *, automation_id: uuid.UUID, version: int, cursor: dict[str, Any]) -> None:
    execute(conn, QUERIES["forget_seen"], automation_id=automation_id)
    execute(conn, QUERIES["prime_state"], automation_id=automation_id, version=version, cursor=Jsonb(cursor))


def record_seen(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID, keys: list[str]) -> None:
    if keys:
        execute(conn, QUERIES["record_seen"], client_id=client_id, automation_id=automation_id, keys=keys)


def waiting_items(conn: Connection, *, automation_id: uuid.UUID, limit: int) -> list[str]:
    return [row["item_key"] for row in fetch_all(conn, QUERIES["waiting_items"], automation_id=automation_id,
                                                 limit=limit)]


def mark_started(conn: Connection, *, automation_id: uuid.UUID, item_key: str, run_id: uuid.UUID | None) -> None:
    execute(conn, QUERIES["mark_started"], automation_id=automation_id, item_key=item_key, run_id=run_id)


def count_waiting(conn: Connection, *, automation_id: uuid.UUID) -> int:
    return int(fetch_one(conn, QUERIES["count_waiting"], automation_id=automation_id)["waiting"])


def advance_state(conn: Connection, *, automation_id: uuid.UUID, cursor: dict[str, Any]) -> None:
    execute(conn, QUERIES["advance_state"], automation_id=automation_id, cursor=Jsonb(cursor))


def set_next_poll(conn: Connection, *, automation_id: uuid.UUID, version: int, previous: datetime | None,
                  next_run_at: datetime) -> bool:
    """False when the automation changed since the poll read it (the poll is then undone)."""
    return fetch_optional(conn, QUERIES["set_next_poll"], automation_id=automation_id, version=version,
                          previous=previous, next_run_at=next_run_at) is not None
