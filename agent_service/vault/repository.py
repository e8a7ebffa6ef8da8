"""Reading and writing credential rows; plaintext never reaches this module."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_service.vault.keyring import Purpose, Sealed
from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True)
class CredentialRow:
    """One sealed credential as stored: identifiers, revision and ciphertext."""

    credential_id: uuid.UUID
    connection_id: uuid.UUID
    purpose: Purpose
    revision: int
    sealed: Sealed

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CredentialRow:
        return cls(
            credential_id=row["credential_id"],
            connection_id=row["connection_id"],
            purpose=Purpose(row["purpose"]),
            revision=row["revision"],
            sealed=Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"])),
        )


@dataclass(frozen=True)
class ListedCredential:
    """A row rotation still has to move: ids, key id and revision, no ciphertext."""

    client_id: uuid.UUID
    credential_id: uuid.UUID
    key_id: str
    revision: int


def lock_connection(conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
    """Lock the connection row; False when this client has no such connection."""
    row = fetch_optional(
        conn, QUERIES["lock_connection"], client_id=client_id, connection_id=connection_id
    )
    return row is not None


def lock_credential(
    conn: Connection, *, connection_id: uuid.UUID, purpose: Purpose
) -> tuple[uuid.UUID, int] | None:
    row = fetch_optional(
        conn, QUERIES["lock_credential"], connection_id=connection_id, purpose=purpose.value
    )
    return None if row is None else (row["credential_id"], row["revision"])


def insert_credential(
    conn: Connection,
    *,
    client_id: uuid.UUID,
    credential_id: uuid.UUID,
    connection_id: uuid.UUID,
    purpose: Purpose,
    sealed: Sealed,
) -> None:
    execute(
        conn,
        QUERIES["insert_credential"],
        client_id=client_id,
        credential_id=credential_id,
        connection_id=connection_id,
        purpose=purpose.value,
        key_id=sealed.key_id,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )


def replace_credential(
    conn: Connection, *, credential_id: uuid.UUID, revision: int, sealed: Sealed
) -> bool:
    """True if the row still had this revision and now holds the new ciphertext."""
    changed = execute(
        conn,
        QUERIES["replace_credential"],
        credential_id=credential_id,
        revision=revision,
        key_id=sealed.key_id,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )
    return changed == 1


def get_credential(
    conn: Connection, *, connection_id: uuid.UUID, purpose: Purpose
) -> CredentialRow | None:
    row = fetch_optional(
        conn, QUERIES["get_credential"], connection_id=connection_id, purpose=purpose.value
    )
    return None if row is None else CredentialRow.from_row(row)


def get_credential_at_revision(conn: Connection, listed: ListedCredential) -> CredentialRow | None:
    row = fetch_optional(
        conn,
        QUERIES["get_credential_at_revision"],
        credential_id=listed.credential_id,
        revision=listed.revision,
        key_id=listed.key_id,
    )
    return None if row is None else CredentialRow.from_row(row)


def mark_connection_needs_reauth(conn: Connection, *, connection_id: uuid.UUID, reason: str) -> bool:
    return execute(
        conn, QUERIES["mark_connection_needs_reauth"], connection_id=connection_id, reason=reason
    ) == 1


def count_encryptions(conn: Connection, *, key_id: str, count: int) -> int:
    """Record `count` encryptions about to happen under key_id; the key's new total."""
    row = fetch_one(conn, QUERIES["count_encryptions"], key_id=key_id, count=count)
    return int(row["encryptions"])


def key_usage(conn: Connection, *, key_id: str) -> int:
    row = fetch_optional(conn, QUERIES["key_usage"], key_id=key_id)
    return 0 if row is None else int(row["encryptions"])


def key_census(conn: Connection) -> dict[str, int]:
    """Credential rows per key id across every client."""
    return {row["key_id"]: int(row["credentials"]) for row in fetch_all(conn, QUERIES["key_census"])}


def rotation_batch(
    conn: Connection, *, primary_key_id: str, after: uuid.UUID | None, limit: int
) -> list[ListedCredential]:
    rows = fetch_all(
        conn, QUERIES["rotation_batch"], primary_key_id=primary_key_id, after=after, limit=limit
    )
    return [ListedCredential(**row) for row in rows]


def record_access(
    conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID, purpose: Purpose, reason: str,
    service: str, accessor: str, run_id: uuid.UUID | None, step_index: int | None,
) -> None:
    """Audit one handing-out of plaintext (metadata only) in the client's tenant transaction."""
    execute(conn, QUERIES["record_access"], client_id=client_id, connection_id=connection_id,
            purpose=purpose.value, reason=reason, service=service, accessor=accessor, run_id=run_id,
            step_index=step_index)
