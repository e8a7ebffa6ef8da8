"""What the second factor reads and writes of `user_totp`; every function takes a tenant connection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def upsert_pending(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, key_id: str, nonce: bytes,
                   ciphertext: bytes) -> dict[str, Any] | None:
    """A fresh unconfirmed secret (replacing an unconfirmed one); None when a confirmed one is there."""
    return fetch_optional(conn, QUERIES["upsert_pending"], client_id=client_id, user_id=user_id, key_id=key_id,
                          nonce=nonce, ciphertext=ciphertext)


def lock_secret(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["lock_secret"], client_id=client_id, user_id=user_id)


def accept_step(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, step: int, confirm: bool) -> None:
    execute(conn, QUERIES["accept_step"], client_id=client_id, user_id=user_id, step=step, confirm=confirm)


def delete_secret(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return bool(execute(conn, QUERIES["delete_secret"], client_id=client_id, user_id=user_id))
