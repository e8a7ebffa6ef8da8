"""Rows for tests, written through the same tenant transactions the services use."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NamedTuple

import psycopg
from psycopg.conninfo import conninfo_to_dict

from shared.db import Database, tenant_transaction


def make_client(db: Database, *, name: str = "Acme Bakery", client_id: uuid.UUID | None = None) -> uuid.UUID:
    """A new client row, inserted as the intake does at sign-up."""
    client_id = client_id or uuid.uuid4()
    with tenant_transaction(db, client_id) as conn:
        conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s)", [client_id, name])
    return client_id


# Each test database's owner DSN, by database name (tests/conftest.py registers it): users and sessions
# are written as the owner, since neither service's role may add a user to a client or start a session
# without the password (docs/client-proof.md).
OWNER_DSNS: dict[str, str] = {}


@contextmanager
def _as_owner(db: Database, client_id: uuid.UUID) -> Iterator[psycopg.Connection[Any]]:
    """A transaction as the owner of the database `db` reaches, in the client's tenant scope."""
    name = conninfo_to_dict(db.pool.conninfo)["dbname"]
    with psycopg.connect(OWNER_DSNS[str(name)]) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.client_id', %s, true)", [str(client_id)])
        yield conn


def make_user(db: Database, client_id: uuid.UUID, *, email: str | None = None,
              password_hash: str = "$argon2id$placeholder") -> uuid.UUID:
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    with _as_owner(db, client_id) as conn:
        row = conn.execute(
            "INSERT INTO users (client_id, email, password_hash) VALUES (%s, %s, %s) RETURNING user_id",
            [client_id, email, password_hash],
        ).fetchone()
    assert row is not None
    return row[0]


def make_session(db: Database, client_id: uuid.UUID, *, user_id: uuid.UUID | None = None,
                 idle: timedelta = timedelta(minutes=30), absolute: timedelta = timedelta(hours=12)) -> str:
    """A live session of the client (a new user's unless given), written as the owner; its secret."""
    user_id = user_id or make_user(db, client_id)
    secret = secrets.token_urlsafe(32)
    with _as_owner(db, client_id) as conn:
        conn.execute("INSERT INTO sessions (client_id, session_hash, user_id, expires_at) "
                     "VALUES (%s, %s, %s, now() + least(%s, %s))",
                     [client_id, hashlib.sha256(secret.encode()).digest(), user_id, idle, absolute])
    return secret


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


def client_of(owner_conn: psycopg.Connection[Any], email: str) -> uuid.UUID:
    """The client a user signed up into, by the user's email."""
    row = owner_conn.execute("SELECT client_id FROM users WHERE email = %s", [email]).fetchone()
    assert row is not None, email
    return row[0]


class ClientRows(NamedTuple):
    """A client made by the factories, with a user, an automation and its connections."""

    client_id: uuid.UUID
    google: uuid.UUID
    slack: uuid.UUID | None


def make_two_clients(intake_db: Database, agent_db: Database) -> tuple[ClientRows, ClientRows]:
    """Client A (Google and Slack connected) and client B (Google only), each with a user and an automation."""
    clients = []
    for name, providers in (("Client A", ("google", "slack")), ("Client B", ("google",))):
        client_id = make_client(intake_db, name=name)
        make_user(intake_db, client_id)
        make_automation(intake_db, client_id)
        connections = {provider: make_connection(agent_db, client_id, provider=provider) for provider in providers}
        clients.append(ClientRows(client_id, connections["google"], connections.get("slack")))
    return clients[0], clients[1]


def run_coroutine(make_coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion in a thread of its own: Playwright's sync API keeps an
    event loop running in the main thread for the whole session, where asyncio.run refuses."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
