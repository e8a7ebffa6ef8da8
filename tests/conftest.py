"""Fixtures shared by every test: a real PostgreSQL, one fresh database per test.

The server is the embedded one (embedded_server_pgdata() says where) unless TEST_DATABASE_URL names
another (CI also runs the integration tests against the machine's PostgreSQL 15). A
template database is migrated once per session; each test gets its own clone of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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

    def __post_init__(self) -> None:
        from tests.factories import OWNER_DSNS

        OWNER_DSNS[self.name] = self.owner_dsn  # the factories write users and sessions as the owner

    @property
    def intake_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_intake")

    @property
    def agent_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_agent")


# Memory-backed storage for the embedded test server when the machine has room for it. Every test
# clones the template (about 450 files) and drops its clone afterwards; on a disk file system that
# churn costs far more than the test itself (on ext4 without a journal each new inode skips every
# one deleted in the last seconds: 0.3-1.5 s a clone on a busy machine, against 0.1 s in memory).
# The data is throwaway: it is made anew, migrated template and all, after a reboot.
MEMORY_DIR = Path("/dev/shm")
MEMORY_NEEDED = 2 * 1024**3
# What the server may keep of its write-ahead log in memory (each clone writes its template's size).
TEST_SERVER_SETTINGS = {"max_wal_size": "256MB", "min_wal_size": "64MB"}


def embedded_server_pgdata() -> Path:
    """Where the embedded test server keeps its data: in memory, one per clone of the repository, else .data/."""
    if MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK) and shutil.disk_usage(MEMORY_DIR).free > MEMORY_NEEDED:
        clone = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
        return MEMORY_DIR / f"hapex-test-postgres-{clone}"
    return REPO_ROOT / ".data" / "test-postgres"


def ensure_test_server(pgdata: Path) -> str:
    """Start (initialising if new) the embedded test server; the owner's DSN on its postgres database."""
    dsn = embedded_db.ensure_running(pgdata, database="postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in TEST_SERVER_SETTINGS.items():
            if conn.execute("SELECT current_setting(%s)", [name]).fetchone() != (value,):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                conn.execute("SELECT pg_reload_conf()")
    return dsn


def _embedded_pgdata() -> Path | None:
    return None if os.environ.get("TEST_DATABASE_URL", "").strip() else embedded_server_pgdata()


_started_by_controller = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist the controller starts the embedded server (and stops it at the end if it
    started it), so that no worker stops it while another still uses it."""
    pgdata = _embedded_pgdata()
    if pgdata is None or hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    config.stash[_started_by_controller] = not (pgdata / "postmaster.pid").exists()
    ensure_test_server(pgdata)


def pytest_unconfigure(config: pytest.Config) -> None:
    pgdata = _embedded_pgdata()
    if pgdata is not None and config.stash.get(_started_by_controller, False):
        embedded_db.stop(pgdata)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The owner's DSN on the test server (the embedded one unless TEST_DATABASE_URL)."""
    pgdata = _embedded_pgdata()
    if pgdata is None:
        yield os.environ["TEST_DATABASE_URL"].strip()
        return
    was_running = (pgdata / "postmaster.pid").exists()
    yield ensure_test_server(pgdata)
    if not was_running:
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
