"""What the passkeys read and write: `user_passkeys` and the challenges, each a named query."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def insert_challenge(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, challenge_hash: bytes,
                     purpose: str) -> None:
    execute(conn, QUERIES["insert_passkey_challenge"], client_id=client_id, user_id=user_id,
            challenge_hash=challenge_hash, purpose=purpose)


def spend_challenge(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, challenge_hash: bytes,
                    purpose: str) -> bool:
    """True once for a live challenge of this user and purpose; it is gone either way."""
    return bool(fetch_one(conn, QUERIES["spend_passkey_challenge"], client_id=client_id, user_id=user_id,
                          challenge_hash=challenge_hash, purpose=purpose)["live"])


def issue_sign_in_challenge(conn: Connection, *, challenge_hash: bytes) -> None:
    execute(conn, QUERIES["issue_passkey_sign_in_challenge"], challenge_hash=challenge_hash)


def spend_sign_in_challenge(conn: Connection, *, challenge_hash: bytes) -> bool:
    return bool(fetch_one(conn, QUERIES["spend_passkey_sign_in_challenge"], challenge_hash=challenge_hash)["live"])


def user_credentials(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["user_passkey_credentials"], client_id=client_id, user_id=user_id)


def lock_credential(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID,
                    credential_id: bytes) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["lock_passkey"], client_id=client_id, user_id=user_id,
                          credential_id=credential_id)


def insert_passkey(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, credential_id: bytes,
                   public_key: bytes, sign_count: int, transports: list[str], label: str) -> uuid.UUID | None:
    """The new passkey's id; None when this client already has the credential."""
    row = fetch_optional(conn, QUERIES["insert_passkey"], client_id=client_id, user_id=user_id,
                         credential_id=credential_id, public_key=public_key, sign_count=sign_count,
                         transports=transports, label=label)
    return None if row is None else row["passkey_id"]


def record_use(conn: Connection, *, client_id: uuid.UUID, passkey_id: uuid.UUID, sign_count: int) -> None:
    execute(conn, QUERIES["record_passkey_use"], client_id=client_id, passkey_id=passkey_id, sign_count=sign_count)


def delete_passkey(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, passkey_id: uuid.UUID) -> bool:
    return bool(execute(conn, QUERIES["delete_passkey"], client_id=client_id, user_id=user_id,
                        passkey_id=passkey_id))
