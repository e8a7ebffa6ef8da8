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


def list_connections(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_connections"], client_id=client_id)


def get_connection(
    conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID
) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_connection"], client_id=client_id,
                          connection_id=connection_id)
