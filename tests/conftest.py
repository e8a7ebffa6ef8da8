"""Fixtures shared by every test: a real PostgreSQL, one fresh database per test.

The server is the embedded one under .data/test-postgres unless TEST_DATABASE_URL names
another (CI also runs the integration tests against the machine's PostgreSQL 15). A
template database is migrated once per session; each test gets its own clone of it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hapex.localstack import embedded_db
from shared.db import Database
from shared.db.migrate import apply_migrations

REPO_ROOT = Path(__file__).resolve().parents[1]

# Fixtures `agent_app` and `api`: the agent API with known tokens (tests/agent_api.py).
pytest_plugins = ["tests.agent_api"]


@dataclass(frozen=True)
class TestDatabase:
    """One test's database, reachable as the owner and as each service role."""

    __test__ = False

    name: str
    owner_dsn: str

    @property
    def intake_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_intake")

    @property
    def agent_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_agent")


def _server_dsn() -> tuple[str, Path | None]:
    configured = os.environ.get("TEST_DATABASE_URL", "").strip()
    if configured:
        return configured, None
    pgdata = REPO_ROOT / ".data" / "test-postgres"
    return embedded_db.ensure_running(pgdata, database="postgres"), pgdata


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The owner's DSN on the test server (the embedded one unless TEST_DATABASE_URL)."""
    pgdata = None if os.environ.get("TEST_DATABASE_URL", "").strip() else REPO_ROOT / ".data" / "test-postgres"
    was_running = pgdata is not None and (pgdata / "postmaster.pid").exists()
    dsn, _ = _server_dsn()
    yield dsn
    if pgdata is not None and not was_running:
        embedded_db.stop(pgdata)


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> Iterator[str]:
    name = f"hapex_tpl_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    apply_migrations(embedded_db.with_database(pg_server, name))
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_database_from(pg_server: str, template: str) -> TestDatabase:
    name = f"hapex_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    return TestDatabase(name=name, owner_dsn=embedded_db.with_database(pg_server, name))


def drop_database(pg_server: str, name: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database(pg_server: str, migrated_template: str) -> Iterator[TestDatabase]:
    """A fresh, migrated database for this test alone."""
    db = create_database_from(pg_server, migrated_template)
    yield db
    drop_database(pg_server, db.name)


@pytest.fixture
def owner_conn(database: TestDatabase) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.owner_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def agent_db(database: TestDatabase) -> Iterator[Database]:
    db = Database(database.agent_dsn, name="test-agent").open()
    yield db
    db.close()


@pytest.fixture
def intake_db(database: TestDatabase) -> Iterator[Database]:
    db = Database(database.intake_dsn, name="test-intake").open()
    yield db
    db.close()
