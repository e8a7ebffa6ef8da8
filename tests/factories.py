"""Rows for tests, written through the same tenant transactions the services use."""

from __future__ import annotations

import uuid
from typing import Any

from shared.db import Database, tenant_transaction


def make_client(db: Database, *, name: str = "Acme Bakery", client_id: uuid.UUID | None = None) -> uuid.UUID:
    """A new client row, inserted as the intake does at sign-up."""
    client_id = client_id or uuid.uuid4()
    with tenant_transaction(db, client_id) as conn:
        conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s)", [client_id, name])
    return client_id


def make_user(db: Database, client_id: uuid.UUID, *, email: str | None = None,
              password_hash: str = "$argon2id$placeholder") -> uuid.UUID:
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    with tenant_transaction(db, client_id) as conn:
        row = conn.execute(
            "INSERT INTO users (client_id, email, password_hash) VALUES (%s, %s, %s) RETURNING user_id",
            [client_id, email, password_hash],
        ).fetchone()
    assert row is not None
    return row[0]


def make_connection(db: Database, client_id: uuid.UUID, *, provider: str = "google",
                    auth_kind: str = "oauth2", status: str = "active",
                    scopes: list[str] | None = None) -> uuid.UUID:
    with tenant_transaction(db, client_id) as conn:
        row = conn.execute(
            """INSERT INTO connections (client_id, provider, auth_kind, status, scopes_granted)
               VALUES (%s, %s, %s, %s, %s) RETURNING connection_id""",
            [client_id, provider, auth_kind, status, scopes or []],
        ).fetchone()
    assert row is not None
    return row[0]


def make_automation(db: Database, client_id: uuid.UUID, *, name: str = "Morning digest",
                    **columns: Any) -> uuid.UUID:
    with tenant_transaction(db, client_id) as conn:
        row = conn.execute(
            "INSERT INTO automations (client_id, name) VALUES (%s, %s) RETURNING automation_id",
            [client_id, name],
        ).fetchone()
    assert row is not None
    return row[0]


def run_coroutine(make_coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion in a thread of its own: Playwright's sync API keeps an
    event loop running in the main thread for the whole session, where asyncio.run refuses."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
