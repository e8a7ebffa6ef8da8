"""Reading and writing connection rows; every function takes a tenant connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_service.vault.keyring import Purpose
from agent_service.vault.repository import CredentialRow
from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
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


def connection_for_step(conn: Connection, *, provider: str) -> dict[str, Any] | None:
    """The connection a run's step uses for the provider, active first; None if it was never connected."""
    return connection_and_credential_for_step(conn, provider=provider, purpose=None)[0]


def connection_and_credential_for_step(conn: Connection, *, provider: str, purpose: Purpose | None,
                                       ) -> tuple[dict[str, Any] | None, CredentialRow | None]:
    """As connection_for_step, with the connection's sealed credential for `purpose` read in the same
    statement (None: no purpose named, or none stored), for the vault to open."""
    row = fetch_optional(conn, QUERIES["connection_for_step"], provider=provider,
                         purpose=None if purpose is None else purpose.value)
    if row is None:
        return None, None
    sealed = CredentialRow.from_row(row) if row["credential_id"] is not None else None
    connection = {key: row[key] for key in ("connection_id", "status", "scopes_granted", "access_token_expires_at")}
    return connection, sealed


def access_token_expiry(conn: Connection, *, connection_id: uuid.UUID) -> datetime | None:
    """The stored expiry, re-read after a refresh another transaction committed."""
    row = fetch_optional(conn, QUERIES["access_token_expiry"], connection_id=connection_id)
    return row["access_token_expires_at"] if row else None


def lock_connection_expiry(conn: Connection, *, connection_id: uuid.UUID) -> dict[str, Any] | None:
    """The connection's status and expiry, locked until commit: one refresh at a time."""
    return fetch_optional(conn, QUERIES["lock_connection_expiry"], connection_id=connection_id)


def save_refreshed_expiry(conn: Connection, *, connection_id: uuid.UUID, expires_at: datetime | None) -> None:
    execute(conn, QUERIES["save_refreshed_expiry"], connection_id=connection_id, expires_at=expires_at)


def mark_needs_reauth(conn: Connection, *, connection_id: uuid.UUID, reason: str) -> None:
    """Only an active connection changes: a revoked one stays revoked."""
    execute(conn, QUERIES["mark_needs_reauth"], connection_id=connection_id, reason=reason)
