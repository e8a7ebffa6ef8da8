"""Apply the ordered SQL files in shared/migrations, once each, as the owner role."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number: it only has to be the same for every process that migrates.
_ADVISORY_LOCK_KEY = 0x4841504558

# A managed PostgreSQL's owner is no superuser, and PostgreSQL lets it hand a function to
# hapex_definer (ALTER FUNCTION ... OWNER TO) only while that role may create in the function's
# schema. So, for a non-superuser owner and only inside each migration's own transaction, PUBLIC
# may create in schema public (the default before PostgreSQL 15); the grant is revoked before the
# commit, so no other session ever sees it and no role keeps it.
_LEND_CREATE_ON_PUBLIC = """
SELECT NOT rolsuper
       AND NOT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                       WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE')
FROM pg_roles WHERE rolname = current_user
"""


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not understood: {path.name}")
        migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def apply_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply what is not applied yet, each file in its own transaction; return those applied."""
    applied_now: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS hapex_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            recorded = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, name, checksum FROM hapex_migrations")
            }
            for migration in discover(directory):
                if migration.version in recorded:
                    name, checksum = recorded[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{name} changed after it was applied"
                        )
                    continue
                with conn.transaction():
                    lend = conn.execute(_LEND_CREATE_ON_PUBLIC).fetchone()
                    if lend and lend[0]:
                        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
                    conn.execute(migration.sql)
                    if lend and lend[0]:
                        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                    conn.execute(
                        "INSERT INTO hapex_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        [migration.version, migration.name, migration.checksum],
                    )
                logger.info("migration applied", extra={"migration": migration.version})
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
    return applied_now


def pending(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations on disk that the database has not recorded."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('hapex_migrations') IS NOT NULL").fetchone()
        done: set[int] = set()
        if exists and exists[0]:
            done = {row[0] for row in conn.execute("SELECT version FROM hapex_migrations")}
    return [m for m in discover(directory) if m.version not in done]
