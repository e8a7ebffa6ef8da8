"""The monthly rollup of cost events (migration 0026): always the sums of the cost events themselves.

The costs page and the agent's spend check read monthly_costs; these tests compare what they
read with the aggregation of cost_events they replaced, after inserts of every kind (the
engine's, the build chat's with no run, several at once, in several months, and two
transactions adding to the same row at once), and pin what the prune and a client's deletion
do to it.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from agent_service.chat import repository as chat_repository
from agent_service.runs import repository as runs_repository
from hapex.localstack import embedded_db
from intake.automations import repository as intake_repository
from intake.automations.costs import first_month_shown
from shared.db import PermissionDenied, tenant_transaction
from shared.db.migrate import MIGRATIONS_DIR, apply_migrations
from tests.conftest import drop_database
from tests.factories import make_automation, make_client

# The queries the rollup replaced, as they were before migration 0026.
OLD_COSTS_BY_MONTH = """
SELECT to_char(date_trunc('month', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month, source,
       count(*) AS events, coalesce(sum(calls), 0) AS calls,
       coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
       coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
       coalesce(sum(amount_microusd), 0) AS amount_microusd
FROM cost_events
WHERE client_id = %(client_id)s AND occurred_at >= %(since)s
GROUP BY 1, 2
ORDER BY 1, 2"""
OLD_COSTS_THIS_MONTH = """
SELECT source, provider, model, count(*) AS events, coalesce(sum(calls), 0) AS calls,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
       coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(amount_microusd) AS amount_microusd
FROM cost_events
WHERE client_id = %(client_id)s
  AND occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY source, provider, model
ORDER BY amount_microusd DESC, source, provider, model"""
OLD_MONTH_TO_DATE_SPEND = """
SELECT c.monthly_budget_microusd AS budget,
       coalesce((SELECT sum(e.amount_microusd) FROM cost_events e
                 WHERE e.occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)
           AS spent
FROM clients c"""
# Every row of the rollup, as the sums of cost_events would give it.
ROLLUP = """
SELECT client_id, month, source, provider, model, events, calls, input_tokens, output_tokens,
       cache_creation_input_tokens, cache_read_input_tokens, amount_microusd
FROM monthly_costs ORDER BY 1, 2, 3, 4, 5"""
FROM_EVENTS = """
SELECT client_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, source, provider, model, count(*),
       coalesce(sum(calls), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cache_creation_input_tokens), 0), coalesce(sum(cache_read_input_tokens), 0),
       coalesce(sum(amount_microusd), 0)
FROM cost_events GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"""

INSERT_AT = ("INSERT INTO cost_events (client_id, run_id, step_index, source, provider, model, input_tokens, "
             "output_tokens, cache_creation_input_tokens, cache_read_input_tokens, price_version, amount_microusd, "
             "calls, occurred_at) VALUES (%s, %s, 0, %s, %s, %s, %s, %s, %s, %s, '2026-11', %s, %s, %s)")


def _month_start(months_back: int) -> datetime:
    now = datetime.now(UTC)
    year, month = divmod(now.year * 12 + now.month - 1 - months_back, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _run(owner_conn: psycopg.Connection, intake_db: Any, client_id: uuid.UUID) -> uuid.UUID:
    automation_id = make_automation(intake_db, client_id)
    return owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status) "
        "VALUES (%s, %s, 1, 'manual', 'succeeded') RETURNING run_id", [client_id, automation_id]).fetchone()[0]


def _engine_event(agent_db: Any, client_id: uuid.UUID, run_id: uuid.UUID, *, model: str | None, amount: int,
                  tokens: int | None = None, calls: int = 1) -> None:
    with tenant_transaction(agent_db, client_id) as conn:
        runs_repository.insert_cost_events(conn, client_id=client_id, run_id=run_id, step_index=0, cost_events=[{
            "source": "llm" if model else "provider_call", "provider": "anthropic" if model else "google",
            "model": model, "input_tokens": tokens, "output_tokens": tokens and tokens // 4,
            "cache_creation_input_tokens": tokens and 7, "cache_read_input_tokens": None,
            "price_version": "2026-11", "amount_microusd": amount, "calls": calls}])


def _chat_event(agent_db: Any, client_id: uuid.UUID, amount: int) -> None:
    with tenant_transaction(agent_db, client_id) as conn:
        chat_repository.insert_chat_cost_event(conn, client_id=client_id, model="claude-sonnet-4-5",
                                               input_tokens=1200, output_tokens=300, price_version="2026-11",
                                               amount_microusd=amount, cache_read_input_tokens=900)


def _fill(owner_conn: psycopg.Connection, intake_db: Any, agent_db: Any, client_id: uuid.UUID) -> None:
    """Every kind of insert there is, over this month, earlier months, a month's edges and the next month."""
    run_id = _run(owner_conn, intake_db, client_id)
    _engine_event(agent_db, client_id, run_id, model="claude-sonnet-4-5", amount=4100, tokens=1000)
    _engine_event(agent_db, client_id, run_id, model="claude-haiku-4-5", amount=900, tokens=800)
    _engine_event(agent_db, client_id, run_id, model=None, amount=0, calls=3)
    _engine_event(agent_db, client_id, run_id, model=None, amount=0, calls=2)
    _chat_event(agent_db, client_id, 2500)
    _chat_event(agent_db, client_id, 1500)
    rows = []
    for back in (1, 2, 5, 11, 12, 14):
        start = _month_start(back)
        for when, model in ((start, "claude-sonnet-4-5"), (start + timedelta(days=13, hours=5), None),
                            (start + timedelta(days=27, hours=23, minutes=59), "claude-haiku-4-5")):
            rows.append((client_id, run_id if back % 2 else None, "llm" if model else "provider_call",
                         "anthropic" if model else "slack", model, 500 if model else None,
                         90 if model else None, None, 40 if model else None, 700 + back if model else 0,
                         1 if model else 4, when))
    # The last microsecond of last month and the first of the next, written by a session far from UTC.
    rows.append((client_id, None, "chat", "anthropic", "claude-sonnet-4-5", 10, 2, 1, 1, 333, 1,
                 _month_start(0) - timedelta(microseconds=1)))
    rows.append((client_id, None, "chat", "anthropic", "claude-sonnet-4-5", 10, 2, 1, 1, 444, 1,
                 _month_start(-1)))
    with tenant_transaction(agent_db, client_id) as conn:
        conn.execute("SET LOCAL TimeZone = 'Pacific/Kiritimati'")
        conn.cursor().executemany(INSERT_AT, rows)  # row by row
    with tenant_transaction(agent_db, client_id) as conn:  # several rows in one statement
        conn.execute(
            "INSERT INTO cost_events (client_id, source, provider, model, input_tokens, output_tokens, "
            "amount_microusd, occurred_at) "
            "SELECT %s, 'llm', 'anthropic', 'claude-sonnet-4-5', 100 * n, 10 * n, 50 * n, "
            "       %s - make_interval(days => n * 20) FROM generate_series(1, 20) n",
            [client_id, datetime.now(UTC)])


def _assert_rollup_matches_events(owner_conn: psycopg.Connection) -> None:
    assert owner_conn.execute(ROLLUP).fetchall() == owner_conn.execute(FROM_EVENTS).fetchall()


def _assert_queries_match(intake_db: Any, agent_db: Any, client_id: uuid.UUID) -> None:
    since = first_month_shown()
    with tenant_transaction(intake_db, client_id) as conn:
        by_month = intake_repository.costs_by_month(conn, client_id=client_id, since=since)
        this_month = intake_repository.costs_this_month(conn, client_id=client_id)
        with conn.cursor(row_factory=dict_row) as cursor:
            old_by_month = cursor.execute(OLD_COSTS_BY_MONTH, {"client_id": client_id, "since": since}).fetchall()
            old_this_month = cursor.execute(OLD_COSTS_THIS_MONTH, {"client_id": client_id}).fetchall()
    assert by_month and this_month
    # Equal values of equal types (an int stays an int, a numeric sum a Decimal).
    assert [[(k, type(v), v) for k, v in row.items()] for row in by_month] == \
        [[(k, type(v), v) for k, v in row.items()] for row in old_by_month]
    assert [[(k, type(v), v) for k, v in row.items()] for row in this_month] == \
        [[(k, type(v), v) for k, v in row.items()] for row in old_this_month]
    with tenant_transaction(agent_db, client_id) as conn:
        spend = runs_repository.month_to_date_spend(conn)
        with conn.cursor(row_factory=dict_row) as cursor:
            old_spend = cursor.execute(OLD_MONTH_TO_DATE_SPEND).fetchone()
    assert spend == old_spend and type(spend["spent"]) is type(old_spend["spent"])


def test_the_costs_pages_queries_and_the_spend_check_read_what_the_cost_events_sum_to(owner_conn, intake_db,
                                                                                      agent_db):
    mine = make_client(intake_db, name="Mine")
    theirs = make_client(intake_db, name="Theirs")
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 10000000")
    _fill(owner_conn, intake_db, agent_db, mine)
    _fill(owner_conn, intake_db, agent_db, theirs)
    _assert_rollup_matches_events(owner_conn)
    for client_id in (mine, theirs):
        _assert_queries_match(intake_db, agent_db, client_id)


def test_a_client_with_no_cost_event_spent_nothing(intake_db, agent_db):
    client_id = make_client(intake_db)
    with tenant_transaction(intake_db, client_id) as conn:
        assert intake_repository.costs_by_month(conn, client_id=client_id, since=first_month_shown()) == []
        assert intake_repository.costs_this_month(conn, client_id=client_id) == []
    with tenant_transaction(agent_db, client_id) as conn:
        assert runs_repository.month_to_date_spend(conn) == {"budget": None, "spent": 0}


def _wait_for_lock_wait(owner_conn: psycopg.Connection, application_name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if owner_conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                              "AND wait_event_type = 'Lock'", [application_name]).fetchone() == (1,):
            return
        time.sleep(0.01)
    raise AssertionError("the second insert never waited for the first")


@pytest.mark.parametrize("existing", [False, True], ids=["new row", "existing row"])
def test_two_transactions_adding_to_the_same_month_at_once_both_count(database, owner_conn, intake_db, agent_db,
                                                                      existing):
    client_id = make_client(intake_db)
    if existing:
        _chat_event(agent_db, client_id, 100)
    first = psycopg.connect(database.agent_dsn, application_name="rollup-first")
    second = psycopg.connect(database.agent_dsn, application_name="rollup-second")
    errors: list[BaseException] = []
    try:
        for conn in (first, second):
            conn.execute("SELECT set_config('app.client_id', %s, false)", [str(client_id)])
            conn.commit()
        chat_repository.insert_chat_cost_event(first, client_id=client_id, model="claude-sonnet-4-5",
                                               input_tokens=10, output_tokens=1, price_version="2026-11",
                                               amount_microusd=1000)

        def add() -> None:
            try:
                chat_repository.insert_chat_cost_event(second, client_id=client_id, model="claude-sonnet-4-5",
                                                       input_tokens=20, output_tokens=2, price_version="2026-11",
                                                       amount_microusd=2000)
                second.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=add)
        thread.start()
        _wait_for_lock_wait(owner_conn, "rollup-second")  # on the first's row (or its key, if new)
        first.commit()
        thread.join(10)
    finally:
        first.close()
        second.close()
    assert not errors
    row = owner_conn.execute("SELECT events, input_tokens, amount_microusd FROM monthly_costs WHERE client_id = %s",
                             [client_id]).fetchone()
    assert row == ((3, 1230, 3100) if existing else (2, 30, 3000))
    _assert_rollup_matches_events(owner_conn)


def test_a_rolled_back_insert_adds_nothing(intake_db, agent_db, owner_conn):
    client_id = make_client(intake_db)
    _chat_event(agent_db, client_id, 100)
    with pytest.raises(RuntimeError), tenant_transaction(agent_db, client_id) as conn:
        chat_repository.insert_chat_cost_event(conn, client_id=client_id, model="claude-sonnet-4-5",
                                               input_tokens=1, output_tokens=1, price_version="2026-11",
                                               amount_microusd=5000)
        raise RuntimeError("rolled back")
    assert owner_conn.execute("SELECT events, amount_microusd FROM monthly_costs").fetchone() == (1, 100)


def test_the_prune_keeps_the_spending_history_and_a_deleted_client_takes_it_along(owner_conn, intake_db, agent_db):
    client_id = make_client(intake_db)
    neighbour = make_client(intake_db, name="Neighbour")
    for who in (client_id, neighbour):
        owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd, occurred_at) "
                           "VALUES (%s, 'chat', 'anthropic', 700, now() - interval '500 days'), "
                           "(%s, 'chat', 'anthropic', 300, now())", [who, who])
    before = owner_conn.execute(ROLLUP).fetchall()
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_prune_run_records(interval '400 days', 100)").fetchone() == (2,)
    assert owner_conn.execute("SELECT count(*) FROM cost_events").fetchone() == (2,)
    assert owner_conn.execute(ROLLUP).fetchall() == before  # the history stays, whole
    owner_conn.execute("DELETE FROM clients WHERE client_id = %s", [client_id])
    assert owner_conn.execute("SELECT DISTINCT client_id FROM monthly_costs").fetchall() == [(neighbour,)]


@pytest.mark.parametrize("role", ["intake", "agent"])
def test_no_service_writes_the_rollup_and_each_reads_only_its_own_client(owner_conn, intake_db, agent_db, role):
    mine = make_client(intake_db, name="Mine")
    theirs = make_client(intake_db, name="Theirs")
    _chat_event(agent_db, mine, 100)
    _chat_event(agent_db, theirs, 200)
    db = intake_db if role == "intake" else agent_db
    with tenant_transaction(db, mine) as conn:
        assert conn.execute("SELECT client_id, amount_microusd FROM monthly_costs").fetchall() == [(mine, 100)]
    for statement in (
            "UPDATE monthly_costs SET amount_microusd = 0",
            "DELETE FROM monthly_costs",
            "INSERT INTO monthly_costs (client_id, month, source, provider, events, calls, input_tokens, "
            "output_tokens, cache_creation_input_tokens, cache_read_input_tokens, amount_microusd) "
            f"VALUES ('{mine}', date_trunc('month', now())::date, 'chat', 'anthropic', 1, 1, 0, 0, 0, 0, 0)"):
        with pytest.raises(PermissionDenied), tenant_transaction(db, mine) as conn:
            conn.execute(statement)
    # Cost events are written once: the rollup would not follow a change or a deletion.
    for statement in ("UPDATE cost_events SET amount_microusd = 0", "DELETE FROM cost_events"):
        with pytest.raises(PermissionDenied), tenant_transaction(db, mine) as conn:
            conn.execute(statement)
    assert owner_conn.execute("SELECT client_id, amount_microusd FROM monthly_costs ORDER BY amount_microusd"
                              ).fetchall() == [(mine, 100), (theirs, 200)]


@pytest.fixture
def empty_database(pg_server):
    name = "hapex_empty_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield embedded_db.with_database(pg_server, name)
    drop_database(pg_server, name)


def test_the_migration_rolls_up_the_cost_events_already_there(empty_database, tmp_path):
    before = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, before)
    for later in before.glob("*.sql"):
        if int(later.name[:4]) >= 26:
            later.unlink()
    apply_migrations(empty_database, before)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        clients = [conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s) RETURNING client_id",
                                [uuid.uuid4(), name]).fetchone()[0] for name in ("One", "Two")]
        for n, client_id in enumerate(clients):
            conn.execute(
                "INSERT INTO cost_events (client_id, source, provider, model, input_tokens, output_tokens, "
                "cache_read_input_tokens, amount_microusd, calls, occurred_at) "
                "SELECT %s, CASE WHEN k %% 3 = 0 THEN 'provider_call' ELSE 'llm' END, 'anthropic', "
                "       CASE WHEN k %% 3 = 0 THEN NULL ELSE 'claude-sonnet-4-5' END, k, NULLIF(k %% 4, 0), k %% 5, "
                "       k * 10, 1 + k %% 2, now() - make_interval(days => k * 9) "
                "FROM generate_series(1, 60 + %s) k", [client_id, n])
    assert 26 in [m.version for m in apply_migrations(empty_database)]
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert conn.execute(ROLLUP).fetchall() == conn.execute(FROM_EVENTS).fetchall()
        assert conn.execute("SELECT sum(events) FROM monthly_costs").fetchone() == (121,)


def test_the_budget_notice_counts_this_months_sums_once_per_statement_and_client(owner_conn, intake_db, agent_db):
    mine = make_client(intake_db, name="Mine")
    theirs = make_client(intake_db, name="Theirs")
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1000000")
    last_month = _month_start(1)
    # Last month's spending and a free provider call count for nothing.
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd, occurred_at) "
                       "VALUES (%s, 'chat', 'anthropic', 5000000, %s), (%s, 'provider_call', 'google', 0, now())",
                       [mine, last_month, mine])
    # Several priced events of two clients in one statement: one notice each, from the statement's sums.
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd) "
                       "SELECT c, 'chat', 'anthropic', 300000 FROM unnest(%s::uuid[]) c, generate_series(1, 3)",
                       [[mine, theirs]])
    assert owner_conn.execute("SELECT client_id, budget_percent FROM notifications WHERE kind = 'budget_nearly_used' "
                              "ORDER BY budget_percent, client_id").fetchall() == sorted(
        [(mine, 90), (theirs, 90)], key=lambda r: (r[1], r[0]))


def test_two_steps_recording_several_models_in_opposite_orders_do_not_deadlock(agent_db, intake_db, owner_conn,
                                                                               monkeypatch):
    """Each cost event's insert locks its rollup row until the step's commit: a step recording
    several model calls must take those rows in one order, or two steps of the client deadlock.
    A step's events are one statement, whose rollup takes the rows in key order."""
    from agent_service.capabilities.base import LLMUsage
    from agent_service.runs import engine

    client_id = make_client(intake_db)
    run = SimpleNamespace(client_id=client_id, run_id=None)
    provider = SimpleNamespace(key="anthropic")
    usages = [LLMUsage(model="claude-sonnet-4-5", input_tokens=10, output_tokens=1),
              LLMUsage(model="claude-haiku-4-5", input_tokens=20, output_tokens=2)]
    # Each step's insert done and its rows held before either commits: the interleaving that deadlocked.
    both_started = threading.Barrier(2, timeout=2)
    inserted = threading.local()
    original = runs_repository.insert_cost_events

    def insert_cost_events(conn: psycopg.Connection, **kwargs: Any) -> None:
        original(conn, **kwargs)
        if not getattr(inserted, "once", False):
            inserted.once = True
            with contextlib.suppress(threading.BrokenBarrierError):  # the other step waits on this one's row
                both_started.wait()

    monkeypatch.setattr(runs_repository, "insert_cost_events", insert_cost_events)
    errors: list[BaseException] = []

    def step(order: list[Any]) -> None:
        try:
            with tenant_transaction(agent_db, client_id) as conn:
                engine._record_costs(conn, run, 0, provider, order, 0)  # noqa: SLF001 - the engine's own
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=step, args=(order,)) for order in (usages, usages[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert [(exc, exc.__cause__) for exc in errors] == []  # on main: DeadlockDetected
    assert owner_conn.execute("SELECT model, events FROM monthly_costs ORDER BY model").fetchall() == [
        ("claude-haiku-4-5", 2), ("claude-sonnet-4-5", 2)]
