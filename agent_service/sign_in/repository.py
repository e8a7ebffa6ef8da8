"""What sign-in reads and writes: hashes, tickets, sessions; every function takes its connection."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def find_login(conn: Connection, *, email: str) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["find_login"], email=email)


def password_hash(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    row = fetch_optional(conn, QUERIES["password_hash"], client_id=client_id, user_id=user_id)
    return None if row is None else str(row["password_hash"])


def set_password_hash(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, password_hash: str,
                      changed: bool) -> None:
    execute(conn, QUERIES["set_password_hash"], client_id=client_id, user_id=user_id, password_hash=password_hash,
            changed=changed)


def has_second_factor(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return bool(fetch_one(conn, QUERIES["has_second_factor"], client_id=client_id, user_id=user_id)["enrolled"])


def start_session(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, session_hash: bytes,
                  idle: timedelta, absolute: timedelta, device: str) -> None:
    fetch_one(conn, QUERIES["start_session"], client_id=client_id, user_id=user_id, session_hash=session_hash,
              idle=idle, absolute=absolute, device=device)


def end_user_sessions(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["end_user_sessions"], client_id=client_id, user_id=user_id)


def void_reset_links(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> None:
    execute(conn, QUERIES["void_reset_links"], client_id=client_id, user_id=user_id)


def insert_ticket(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, ticket_hash: bytes,
                  ttl: timedelta) -> None:
    execute(conn, QUERIES["forget_stale_tickets"], client_id=client_id, user_id=user_id)
    execute(conn, QUERIES["insert_ticket"], client_id=client_id, user_id=user_id, ticket_hash=ticket_hash, ttl=ttl)


def lock_ticket(conn: Connection, *, client_id: uuid.UUID, ticket_hash: bytes, max_attempts: int) -> uuid.UUID | None:
    """The ticket's user if it is live and has attempts left (this one now counted), else None."""
    row = fetch_optional(conn, QUERIES["lock_ticket"], client_id=client_id, ticket_hash=ticket_hash,
                         max_attempts=max_attempts)
    return None if row is None else row["user_id"]


def ticket_user(conn: Connection, *, client_id: uuid.UUID, ticket_hash: bytes, max_attempts: int) -> uuid.UUID | None:
    row = fetch_optional(conn, QUERIES["ticket_user"], client_id=client_id, ticket_hash=ticket_hash,
                         max_attempts=max_attempts)
    return None if row is None else row["user_id"]


def delete_ticket(conn: Connection, *, client_id: uuid.UUID, ticket_hash: bytes) -> None:
    execute(conn, QUERIES["delete_ticket"], client_id=client_id, ticket_hash=ticket_hash)


def use_recovery_code(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, code_hash: bytes) -> bool:
    return fetch_optional(conn, QUERIES["use_recovery_code"], client_id=client_id, user_id=user_id,
                          code_hash=code_hash) is not None


def queue_email_to(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, kind: str, link_base: str,
                   link_ttl: timedelta, to_address: str, per_window: int, window: timedelta) -> bool:
    return fetch_optional(conn, QUERIES["queue_email_to"], client_id=client_id, user_id=user_id, kind=kind,
                          link_base=link_base, link_ttl=link_ttl, to_address=to_address, per_window=per_window,
                          window=window) is not None
