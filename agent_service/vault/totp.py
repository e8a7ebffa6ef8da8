"""Sealed TOTP secrets (user_totp) as key rotation and the start-up check see them.

A secret is sealed under a per-client subkey of the credential key (SecondFactorBinding), so it
is under a key id like any credential: rotation re-seals it under the primary key, and the
start-up check counts it, so that a retired key is only dropped once no secret needs it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from agent_service.vault.aead import AuthenticationFailed, UnsupportedParameters
from agent_service.vault.keyring import Keyring, Sealed, SecondFactorBinding
from shared.db import QuerySet, execute, fetch_all, fetch_optional
from shared.db.pool import Connection

logger = logging.getLogger(__name__)
QUERIES = QuerySet(Path(__file__).with_name("totp.sql"))


@dataclass(frozen=True)
class ListedSecret:
    """A TOTP secret rotation still has to move: ids and key id, no ciphertext."""

    client_id: uuid.UUID
    user_id: uuid.UUID
    key_id: str


def key_census(conn: Connection) -> dict[str, int]:
    """Sealed TOTP secrets per key id across every client."""
    return {row["key_id"]: int(row["secrets"]) for row in fetch_all(conn, QUERIES["totp_key_census"])}


def rotation_batch(conn: Connection, *, primary_key_id: str, after: tuple[uuid.UUID, uuid.UUID] | None,
                   limit: int) -> list[ListedSecret]:
    after_client, after_user = after if after is not None else (None, None)
    rows = fetch_all(conn, QUERIES["totp_rotation_batch"], primary_key_id=primary_key_id,
                     after_client=after_client, after_user=after_user, limit=limit)
    return [ListedSecret(**row) for row in rows]


def rotate(conn: Connection, keyring: Keyring, listed: ListedSecret) -> str:
    """Re-seal one secret under the primary key, in its client's tenant transaction: 'rotated',
    'changed' (left for another pass), 'unreadable' (left in place: the user signs in with a
    recovery code and enrols again) or 'unknown_key'."""
    if listed.key_id not in keyring.key_ids:
        return "unknown_key"
    row = fetch_optional(conn, QUERIES["lock_totp"], client_id=listed.client_id, user_id=listed.user_id)
    if row is None or row["key_id"] != listed.key_id:
        return "changed"
    current = Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"]))
    binding = SecondFactorBinding(listed.client_id, listed.user_id)
    try:
        # Plaintext only passes between the two calls, never held in a local.
        sealed = keyring.encrypt(keyring.decrypt(current, binding), binding)
    except (AuthenticationFailed, UnsupportedParameters):
        logger.error("TOTP secret failed to decrypt during rotation; left in place",
                     extra={"client_id": listed.client_id, "user_id": listed.user_id,
                            "error_class": "AuthenticationFailed"})
        return "unreadable"
    changed = execute(conn, QUERIES["replace_totp"], client_id=listed.client_id, user_id=listed.user_id,
                      key_id=sealed.key_id, nonce=sealed.nonce, ciphertext=sealed.ciphertext,
                      old_nonce=current.nonce)
    return "rotated" if changed == 1 else "changed"
