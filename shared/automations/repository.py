"""Saving automations: every save validates against the catalog and records a version."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from shared.automations.definition import load_automation
from shared.db import NoResult, QuerySet, execute, fetch_one
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))
STATUSES = ("draft", "enabled", "disabled", "archived", "deleted")


def create_automation(conn: Connection, *, client_id: uuid.UUID, definition: dict[str, Any],
                      status: str = "draft") -> uuid.UUID:
    """Validate and insert; raises InvalidAutomation and writes nothing when invalid."""
    loaded = load_automation(definition)
    if status not in STATUSES:
        raise ValueError("unknown status")
    automation_id = uuid.uuid4()
    row = fetch_one(conn, QUERIES["insert_automation"], client_id=client_id, automation_id=automation_id,
                    name=loaded["name"], status=status, trigger=Jsonb(loaded["trigger"]),
                    steps=Jsonb(loaded["steps"]), store_outputs=loaded["store_outputs"])
    _record_version(conn, client_id, row["automation_id"], row["version"], loaded)
    return row["automation_id"]  # type: ignore[no-any-return]  # psycopg's dict rows hold Any


def update_automation(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID,
                      definition: dict[str, Any]) -> int:
    """Validate and save as the next version; returns the new version number."""
    loaded = load_automation(definition)
    row = fetch_one(conn, QUERIES["update_automation"], automation_id=automation_id, name=loaded["name"],
                    trigger=Jsonb(loaded["trigger"]), steps=Jsonb(loaded["steps"]),
                    store_outputs=loaded["store_outputs"])
    _record_version(conn, client_id, automation_id, row["version"], loaded)
    return int(row["version"])


def set_status(conn: Connection, *, automation_id: uuid.UUID, status: str) -> None:
    if status not in STATUSES:
        raise ValueError("unknown status")
    if not execute(conn, QUERIES["set_status"], automation_id=automation_id, status=status):
        raise NoResult()


def get_automation(conn: Connection, *, automation_id: uuid.UUID) -> dict[str, Any]:
    return fetch_one(conn, QUERIES["get_automation"], automation_id=automation_id)



def _record_version(conn: Connection, client_id: uuid.UUID, automation_id: uuid.UUID, version: int,
                    loaded: dict[str, Any]) -> None:
    execute(conn, QUERIES["insert_version"], client_id=client_id, automation_id=automation_id, version=version,
            trigger=Jsonb(loaded["trigger"]), steps=Jsonb(loaded["steps"]))
