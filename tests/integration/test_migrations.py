"""Migrations replay on an empty database to exactly the committed schema (tests/data/schema.sql)."""

from __future__ import annotations

import difflib
import shutil
import threading
import uuid

import psycopg
import pytest

from hapex.localstack import embedded_db
from shared.db.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, discover, pending
from tests.conftest import drop_database
from tests.schema_snapshot import REGENERATE, SNAPSHOT, dump_schema


@pytest.fixture
def empty_database(pg_server):
    name = "hapex_empty_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield embedded_db.with_database(pg_server, name)
    drop_database(pg_server, name)


def test_replaying_every_migration_on_an_empty_database_gives_exactly_the_committed_schema(empty_database):
    applied = apply_migrations(empty_database)
    assert [m.version for m in applied] == [m.version for m in discover()]
    expected = SNAPSHOT.read_text(encoding="utf-8")
    replayed = dump_schema(empty_database)
    difference = "".join(difflib.unified_diff(expected.splitlines(keepends=True), replayed.splitlines(keepends=True),
                                              "tests/data/schema.sql (committed)", "migrated", n=2))
    assert replayed == expected, (
        f"the migrations no longer produce the committed schema. If the change is intended (a new migration), "
        f"run `{REGENERATE}` and review the snapshot's diff in the same commit.\n{difference[:6000]}")


def test_running_migrations_again_changes_nothing(database):
    before = dump_schema(database.owner_dsn)
    assert apply_migrations(database.owner_dsn) == []
    assert pending(database.owner_dsn) == []
    assert dump_schema(database.owner_dsn) == before


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
