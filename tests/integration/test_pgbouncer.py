"""The tenant setting stays inside its transaction through PgBouncer in transaction mode.

A platform that starts and stops intake instances often puts a pooler in transaction mode between
them and PostgreSQL: each transaction may run on any server connection, one that served another
client a moment before. tenant_transaction sets app.client_id with set_config(..., true), which ends
with the transaction. Here PgBouncer (Debian's `pgbouncer`) runs with ONE server connection for the
intake role, so every client connection shares it: what one transaction set is visible to the next
only if it outlived its transaction, and a session-level setting (the mistake) is shown to leak.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.config import PoolSettings
from shared.db import Database, tenant_transaction
from tests.e2e.conftest import free_port, wait_for
from tests.factories import make_client, make_user

PGBOUNCER_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")


def find_pgbouncer() -> str | None:
    for name in PGBOUNCER_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def pgbouncer_dsn(database, tmp_path) -> Iterator[str]:
    """hapex_intake's URL through PgBouncer, pool_mode=transaction, one server connection."""
    binary = find_pgbouncer()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("no pgbouncer found; .ci/run installs Debian's pgbouncer package")
        pytest.skip("no pgbouncer found: install it (Debian: apt-get install pgbouncer) to run this test")
    server = conninfo_to_dict(database.intake_dsn)
    port = free_port()
    (tmp_path / "users.txt").write_text('"hapex_intake" ""\n')
    backend = " ".join(f"{key}={server[key]}" for key in ("host", "port", "dbname") if server.get(key))
    (tmp_path / "pgbouncer.ini").write_text(f"""[databases]
hapex = {backend}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "users.txt"}
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
server_reset_query =
ignore_startup_parameters = application_name,extra_float_digits
""")
    command = [binary, str(tmp_path / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; it runs as the server's user, who may reach its socket.
        tmp_path.chmod(0o755)
        owner = pwd.getpwuid(Path(str(server.get("host") or "/")).stat().st_uid).pw_name
        command[1:1] = ["-u", owner]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dsn = make_conninfo("", host="127.0.0.1", port=str(port), dbname="hapex", user="hapex_intake")

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {process.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_for(answers, timeout=30)
        yield dsn
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_tenant_setting_ends_with_its_transaction_through_pgbouncer(intake_db, pgbouncer_dsn):
    first, second = make_client(intake_db, name="First"), make_client(intake_db, name="Second")
    make_user(intake_db, first)
    make_user(intake_db, second)
    pooled = Database(pgbouncer_dsn, PoolSettings(min_size=2, max_size=2, transaction_pooler=True),
                      name="through-pgbouncer").open()
    try:
        # More runs than psycopg's prepare threshold (5): no prepared statement may outlive its server connection.
        for _ in range(8):
            for client in (first, second):
                with tenant_transaction(pooled, client) as conn:
                    assert conn.execute("SELECT current_setting('app.client_id')").fetchone() == (str(client),)
                    assert conn.execute("SELECT client_id FROM users").fetchall() == [(client,)]
                # The next transaction, on whichever client connection, runs on the same server connection.
                with pooled.connection() as conn, conn.transaction():
                    assert conn.execute("SELECT coalesce(current_setting('app.client_id', true), '')").fetchone() \
                        == ("",)
                    assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    finally:
        pooled.close()


def test_a_session_level_setting_would_leak_through_the_pooler(pgbouncer_dsn):
    """What the test above guards against is real here: PgBouncer hands the server connection on."""
    leaked = str(uuid.uuid4())
    with psycopg.connect(pgbouncer_dsn, autocommit=True, prepare_threshold=None) as one, \
            psycopg.connect(pgbouncer_dsn, autocommit=True, prepare_threshold=None) as other:
        one.execute("SELECT set_config('app.client_id', %s, false)", [leaked])
        try:
            assert other.execute("SELECT current_setting('app.client_id', true)").fetchone() == (leaked,)
        finally:
            other.execute("RESET app.client_id")
