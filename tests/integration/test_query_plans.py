"""A pool that asks for custom plans never prepares a statement, so PostgreSQL plans each run for
its values; other pools prepare after five runs, as psycopg does."""

from __future__ import annotations

from shared.config import PoolSettings
from shared.db import Database

QUERY = "SELECT count(*) FROM runs WHERE client_id = %s"


def _prepared_after_ten_runs(db: Database) -> int:
    with db.connection() as conn:
        for _ in range(10):
            conn.execute(QUERY, ["00000000-0000-4000-8000-000000000001"])
        return int(conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0])


def test_a_pool_with_custom_plans_never_prepares_and_the_default_pool_does(database):
    planned = Database(database.intake_dsn, PoolSettings(min_size=1, max_size=1, custom_plans=True),
                       name="test-custom-plans").open()
    default = Database(database.intake_dsn, PoolSettings(min_size=1, max_size=1), name="test-default-plans").open()
    try:
        assert _prepared_after_ten_runs(planned) == 0
        assert _prepared_after_ten_runs(default) >= 1
    finally:
        planned.close()
        default.close()
