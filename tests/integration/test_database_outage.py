"""The database goes away: pages answer 503 quickly, health tells the truth, the first request after it returns works.

Each test's own database is made unusable, without touching any other test's: its connections are
terminated (a pooled connection then fails as after a server restart, AdminShutdown) and new ones
refused (ALLOW_CONNECTIONS false), then allowed again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
from psycopg import sql

from shared.db import Database, DatabaseUnavailable, tenant_transaction
from tests.agent_api import acting_for
from tests.factories import make_client

# The target is about 2 s; this limit only catches a hang (the pool's old 30 s wait, or none at all).
HANG = 20.0


def refuse_connections(pg_server: str, name: str, *, allowed: bool) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")))
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", [name])


@contextmanager
def outage(pg_server: str, database) -> Iterator[None]:
    """The test's database is down until the block ends."""
    refuse_connections(pg_server, database.name, allowed=False)
    try:
        yield
    finally:
        refuse_connections(pg_server, database.name, allowed=True)


def fill_pool(db: Database, count: int = 3) -> None:
    """Leave `count` idle connections in the pool, each of which an outage then makes stale."""
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(db.connection()).execute("SELECT 1")


class Timed:
    """The slowest answer seen, for the note; each call must end well within HANG."""

    def __init__(self) -> None:
        self.slowest = 0.0

    def __call__(self, call, *args, **kwargs):
        started = time.monotonic()
        response = call(*args, **kwargs)
        elapsed = time.monotonic() - started
        self.slowest = max(self.slowest, elapsed)
        assert elapsed < HANG, f"{args} took {elapsed:.1f} s"
        return response


def wait_until(condition, limit: float = 60.0) -> float:
    """Seconds until condition() holds; the limit only bounds a failure."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, "the condition never held"
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_intake_answers_briefly_unavailable_and_recovers(pg_server, database, intake_db, agent_db, signed_up):
    visitor, _ = signed_up
    assert visitor.get("/automations").status_code == 200
    fill_pool(intake_db)
    timed = Timed()
    with outage(pg_server, database):
        for _ in range(3):
            page = timed(visitor.get, "/automations")
            assert page.status_code == 503
            assert page.headers["Retry-After"] == "5"
            assert "briefly unavailable" in page.get_data(as_text=True)
            assert "Something went wrong" not in page.get_data(as_text=True)
        assert timed(visitor.get, "/healthz").status_code == 200
        ready = timed(visitor.get, "/readyz")
        assert ready.status_code == 503
        assert ready.json["database"] == "unreachable"
    print(f"slowest intake answer during the outage: {timed.slowest:.2f} s")
    recovery = wait_until(lambda: visitor.get("/readyz").status_code == 200)
    print(f"intake ready again {recovery:.2f} s after the database returned")
    assert visitor.get("/automations").status_code == 200


def test_the_agent_answers_503_in_its_error_shape_and_recovers(pg_server, database, intake_db, agent_db, api):
    client_id = make_client(intake_db)
    path, headers = f"/v1/clients/{client_id}/connections", acting_for(intake_db, client_id)
    assert api.get(path, headers=headers).status_code == 200
    fill_pool(agent_db)
    timed = Timed()
    with outage(pg_server, database):
        for _ in range(3):
            response = timed(api.get, path, headers=headers)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            assert response.json == {"error": "database_unavailable", "message": DatabaseUnavailable.message}
        live = timed(api.get, "/healthz")
        assert (live.status_code, live.json) == (200, {"status": "ok"})
        ready = timed(api.get, "/readyz")
        assert ready.status_code == 503
        assert ready.json == {"status": "unavailable", "database": "unreachable", "credential_keys": "unchecked"}
    print(f"slowest agent answer during the outage: {timed.slowest:.2f} s")
    recovery = wait_until(lambda: api.get("/readyz").status_code == 200)
    print(f"agent ready again {recovery:.2f} s after the database returned")
    assert api.get(path, headers=headers).status_code == 200


@pytest.mark.parametrize("service", ["intake", "agent"])
def test_the_first_request_after_a_restart_gets_a_working_connection(pg_server, database, intake_db, agent_db,
                                                                       signed_up, api, service):
    """Every pooled connection died with the server; none of them reaches a request."""
    visitor, _ = signed_up
    client_id = make_client(intake_db)
    headers = acting_for(intake_db, client_id)

    def first_request():
        if service == "intake":
            return visitor.get("/automations")
        return api.get(f"/v1/clients/{client_id}/connections", headers=headers)

    assert first_request().status_code == 200
    fill_pool(intake_db if service == "intake" else agent_db)
    with outage(pg_server, database):
        pass  # nothing asks while it is down: the pool holds only connections the server has closed
    assert first_request().status_code == 200


def test_a_transaction_cut_off_by_the_outage_writes_nothing(pg_server, database, intake_db, owner_conn):
    client_id = uuid.uuid4()
    with pytest.raises(DatabaseUnavailable), tenant_transaction(intake_db, client_id) as conn:
        conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s)", [client_id, "Half Written"])
        with psycopg.connect(pg_server, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        conn.execute("SELECT 1")
    with tenant_transaction(intake_db, client_id) as conn:
        assert conn.execute("SELECT count(*) FROM clients WHERE client_id = %s", [client_id]).fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM clients WHERE name = 'Half Written'").fetchone() == (0,)
