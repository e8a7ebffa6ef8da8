"""The migrations and roles work where the owner is not a superuser, as on a managed PostgreSQL.

A managed service (RDS, Cloud SQL, Azure, ...) gives its customer an owner with CREATEROLE and
CREATEDB at most, and only its trusted extensions. Service roles are cluster-wide, and the shared test
server's were made by a superuser; so this runs on a server of its own under .data/ (started once,
kept for the next run), where the owner creates them itself, as it would on a fresh managed server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hapex.localstack import embedded_db
from shared.db import Database, tenant_transaction
from shared.db.migrate import apply_migrations
from tests.factories import OWNER_DSNS, make_client, make_session, make_user
from tests.schema_snapshot import SNAPSHOT, dump_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
PGDATA = REPO_ROOT / ".data" / "test-postgres-managed"
OWNER = "hapex_managed_owner"
DATABASE = "hapex_managed"
SERVICE_ROLES = ("hapex_intake", "hapex_agent", "hapex_definer")


@pytest.fixture(scope="module")
def managed_owner_dsn() -> Iterator[str]:
    """A fresh database on a server with no Hapex roles, migrated by an owner that is no superuser."""
    was_running = (PGDATA / "postmaster.pid").exists()
    superuser = embedded_db.ensure_running(PGDATA, database="postgres")
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        for role in (*SERVICE_ROLES, OWNER):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        # What a managed service's customer gets, at most.
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE CREATEDB").format(
            sql.Identifier(OWNER)))
    owner = embedded_db.as_role(superuser, OWNER)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    dsn = embedded_db.with_database(owner, DATABASE)
    apply_migrations(dsn)
    yield dsn
    if not was_running:
        embedded_db.stop(PGDATA)


def test_the_owner_really_is_no_superuser(managed_owner_dsn):
    with psycopg.connect(managed_owner_dsn) as conn:
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (False, False)


def test_a_non_superuser_owner_migrates_to_exactly_the_committed_schema(managed_owner_dsn):
    assert dump_schema(managed_owner_dsn) == SNAPSHOT.read_text()


def test_nothing_but_the_migration_may_create_in_schema_public(managed_owner_dsn):
    """The CREATE lent to PUBLIC during each migration is gone: no service role may create objects."""
    with psycopg.connect(managed_owner_dsn) as conn:
        rows = conn.execute("SELECT r, has_schema_privilege(r, 'public', 'CREATE') FROM unnest(%s::text[]) r",
                            [list(SERVICE_ROLES)]).fetchall()
    assert rows == [(role, False) for role in SERVICE_ROLES]


def test_the_service_roles_are_confined_and_row_security_holds(managed_owner_dsn):
    intake = Database(embedded_db.as_role(managed_owner_dsn, "hapex_intake"), name="managed-intake").open()
    agent = Database(embedded_db.as_role(managed_owner_dsn, "hapex_agent"), name="managed-agent").open()
    try:
        intake.assert_role_is_confined()
        agent.assert_role_is_confined()
        OWNER_DSNS[DATABASE] = managed_owner_dsn  # users and sessions are written as the owner (factories)
        first, second = make_client(intake, name="First"), make_client(intake, name="Second")
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        user = make_user(intake, first, email=email)
        make_user(intake, second)
        with tenant_transaction(intake, first) as conn:
            seen = conn.execute("SELECT client_id FROM users").fetchall()
        assert seen == [(first,)]
        with tenant_transaction(agent, second) as conn:
            assert conn.execute("SELECT count(*) FROM clients WHERE client_id = %s", [first]).fetchone() == (0,)
        # The definer functions (owned by hapex_definer, handed over by a non-superuser) do their work.
        with agent.transaction() as conn:  # the agent's alone: it checks passwords (migration 0025)
            assert conn.execute("SELECT client_id, user_id FROM hapex_find_login(%s)", [email]).fetchall() == [
                (first, user)]
            owner = conn.execute("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'hapex_find_login'"
                                 ).fetchone()
        assert owner == ("hapex_definer",)
        secret = make_session(intake, first, user_id=user)
        assert secret
    finally:
        intake.close()
        agent.close()
