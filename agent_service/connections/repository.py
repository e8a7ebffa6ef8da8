"""Reading and writing connection rows; every function takes a tenant connection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_one
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def list_connections(conn: Connection) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_connections"])


def get_connection(conn: Connection, *, connection_id: uuid.UUID) -> dict[str, Any]:
    return fetch_one(conn, QUERIES["get_connection"], connection_id=connection_id)


def revoke_all_connections(conn: Connection, *, client_id: uuid.UUID) -> int:
    """How many connections were newly marked revoked."""
    return execute(conn, QUERIES["revoke_all_connections"], client_id=client_id)


def delete_all_credentials(conn: Connection, *, client_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["delete_all_credentials"], client_id=client_id)
