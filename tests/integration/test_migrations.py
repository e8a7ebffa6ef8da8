"""Migrations replay on an empty database to the schema the services expect."""

from __future__ import annotations

import shutil
import threading

import psycopg
import pytest

from hapex.localstack import embedded_db
from shared.db.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, discover, pending
from tests.conftest import drop_database

SCHEMA_QUERY = """
SELECT 'column', c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'policy', c.relname || '.' || p.polname || ':' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
       || '/' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') definer='
       || p.prosecdef::text || ' owner=' || pg_get_userbyid(p.proowner)
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'hapex%%'
UNION ALL
SELECT 'grant', table_name || ':' || grantee || ':' || privilege_type
FROM information_schema.role_table_grants WHERE table_schema = 'public' AND grantee LIKE 'hapex%%'
UNION ALL
SELECT 'rls', relname || ':' || relrowsecurity::text || relforcerowsecurity::text
FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
ORDER BY 1, 2
"""


def schema_of(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(SCHEMA_QUERY).fetchall()


@pytest.fixture
def empty_database(pg_server):
    name = "hapex_empty_" + __import__("uuid").uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield embedded_db.with_database(pg_server, name)
    drop_database(pg_server, name)


def test_replaying_every_migration_on_an_empty_database_gives_the_template_schema(empty_database, database):
    applied = apply_migrations(empty_database)
    assert [m.version for m in applied] == [m.version for m in discover()]
    replayed = schema_of(empty_database)
    assert replayed == schema_of(database.owner_dsn)
    kinds = {kind for kind, _ in replayed}
    assert {"column", "policy", "index", "function", "grant", "rls"} <= kinds


def test_running_migrations_again_changes_nothing(database):
    before = schema_of(database.owner_dsn)
    assert apply_migrations(database.owner_dsn) == []
    assert pending(database.owner_dsn) == []
    assert schema_of(database.owner_dsn) == before


def test_two_migrators_at_once_apply_each_file_once(empty_database):
    results: list[int] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            results.append(len(apply_migrations(empty_database)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results) == [0, len(discover())]


def test_a_migration_edited_after_it_was_applied_is_refused(database, tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    first = sorted(copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(database.owner_dsn, copy)


def test_a_failing_migration_leaves_nothing_half_applied(database, tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    (copy / "9998_half.sql").write_text("CREATE TABLE half_done (x int);\nSELECT 1/0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        apply_migrations(database.owner_dsn, copy)
    with psycopg.connect(database.owner_dsn) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM hapex_migrations WHERE version = 9998").fetchone() == (0,)
