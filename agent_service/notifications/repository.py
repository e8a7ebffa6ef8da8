"""Reading and marking notices for their email; every function but the first takes a tenant connection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def pending_notifications(conn: Connection, *, limit: int) -> list[dict[str, Any]]:
    """Across clients (outside any tenant): ids of the notices still to email, oldest first."""
    return fetch_all(conn, QUERIES["pending_notifications"], limit=limit)


def lock_pending_notification(conn: Connection, *, notification_id: uuid.UUID) -> dict[str, Any] | None:
    """The notice, locked for this worker alone; None if it is sent already or another worker has it."""
    return fetch_optional(conn, QUERIES["lock_pending_notification"], notification_id=notification_id)


def notice_recipients(conn: Connection, *, client_id: uuid.UUID) -> list[str]:
    """The client's users' addresses, only to email them its notices."""
    return [row["email"] for row in fetch_all(conn, QUERIES["notice_recipients"], client_id=client_id)]


def finish_notification(conn: Connection, *, notification_id: uuid.UUID, email_status: str, attempted: int) -> None:
    execute(conn, QUERIES["finish_notification"], notification_id=notification_id, email_status=email_status,
            attempted=attempted)
