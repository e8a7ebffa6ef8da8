"""The scheduler in one process: every due slot of many clients fired once, in batched transactions.

The 08:00 rush (tests/bench/bench_rush.py) is the same at scale; here the batching's edges:
more due schedules than one read returns, more than one transaction holds, clients mixed in
one transaction with each slot's run still its own client's, a slot that fails undone alone,
and a second call for the same minute starting nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent_service.runs import scheduler
from shared.db import tenant_transaction
from tests.factories import make_client
from tests.run_fixtures import automation

WEBHOOK_DEFINITION = {
    "name": "Daily at 8",
    "trigger": {"kind": "schedule", "cron": "0 8 * * *", "timezone": "UTC"},
    "steps": [{"capability": "webhook.post", "input": {"url": "https://hooks.example.com/x", "payload": {}}}],
}


def due_schedules(intake_db, agent_db, clients: int, per_client: int, slot: datetime) -> list[tuple]:
    made = []
    for _ in range(clients):
        client_id = make_client(intake_db)
        for _ in range(per_client):
            automation_id = automation(intake_db, client_id, WEBHOOK_DEFINITION)
            with tenant_transaction(agent_db, client_id) as conn:
                conn.execute("UPDATE automations SET next_run_at = %s WHERE automation_id = %s",
                             [slot, automation_id])
            made.append((client_id, automation_id))
    return made


def slot_runs(owner_conn, slot):
    return owner_conn.execute(
        "SELECT r.client_id, r.automation_id, a.client_id, count(*) FROM runs r "
        "JOIN automations a ON a.automation_id = r.automation_id WHERE r.scheduled_for = %s "
        "GROUP BY r.client_id, r.automation_id, a.client_id", [slot]).fetchall()


def test_every_due_slot_of_many_clients_fires_once_across_reads_and_transactions(rt, intake_db, agent_db,
                                                                               owner_conn):
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    made = due_schedules(intake_db, agent_db, clients=3, per_client=7, slot=slot)

    started = scheduler.fire_due_schedules(rt, datetime.now(UTC), limit=5, per_transaction=4)

    assert started == len(made)
    rows = slot_runs(owner_conn, slot)
    assert sorted((c, a) for c, a, _, _ in rows) == sorted(made)
    assert all(run_client == owner and count == 1 for run_client, _, owner, count in rows)
    next_runs = owner_conn.execute("SELECT DISTINCT next_run_at FROM automations WHERE automation_id = ANY(%s)",
                                   [[a for _, a in made]]).fetchall()
    assert next_runs == [(slot.replace(hour=8, minute=0) + timedelta(days=1 if slot.hour >= 8 else 0),)]
    # A second worker's tick for the same minute finds nothing left to start.
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC), limit=5, per_transaction=4) == 0
    assert len(slot_runs(owner_conn, slot)) == len(made)


def test_a_slot_that_fails_is_undone_alone_and_the_others_of_its_transaction_commit(rt, intake_db, agent_db,
                                                                                  owner_conn, monkeypatch, caplog):
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    made = due_schedules(intake_db, agent_db, clients=2, per_client=3, slot=slot)
    broken = made[2][1]
    fire_one = scheduler._fire_one

    def failing(conn, client_id, automation_id, now, spend):
        started = fire_one(conn, client_id, automation_id, now, spend)
        if automation_id == broken:
            raise RuntimeError("the slot's insert went wrong")
        return started

    monkeypatch.setattr(scheduler, "_fire_one", failing)
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC), per_transaction=10) == len(made) - 1
    fired = {a for _, a, _, _ in slot_runs(owner_conn, slot)}
    assert fired == {a for _, a in made} - {broken}
    assert "schedule could not fire" in caplog.text
    # Its next_run_at was rolled back with it, so the next minute tries it again.
    monkeypatch.setattr(scheduler, "_fire_one", fire_one)
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC)) == 1
    assert {a for _, a, _, _ in slot_runs(owner_conn, slot)} == {a for _, a in made}


@pytest.mark.parametrize("budget", [0.0])
def test_the_scheduler_stops_at_its_time_budget_and_leaves_the_rest_for_the_next_minute(rt, intake_db, agent_db,
                                                                                       owner_conn, budget):
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    made = due_schedules(intake_db, agent_db, clients=1, per_client=3, slot=slot)
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC), budget_seconds=budget) == 0
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC)) == len(made)


def test_each_slot_gets_its_steps_and_job_and_a_client_over_budget_its_cancelled_runs_in_one_batch(
        rt, intake_db, agent_db, owner_conn):
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    made = due_schedules(intake_db, agent_db, clients=2, per_client=3, slot=slot)
    spent_client = made[0][0]
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1000 WHERE client_id = %s", [spent_client])
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd) "
                       "VALUES (%s, 'llm', 'anthropic', 1000)", [spent_client])

    assert scheduler.fire_due_schedules(rt, datetime.now(UTC), per_transaction=10) == len(made)

    runs = owner_conn.execute(
        "SELECT r.client_id, r.run_id, r.status, r.error_class, "
        "       (SELECT array_agg(s.client_id::text || ' ' || s.capability || ' ' || s.idempotency_key) "
        "        FROM run_steps s WHERE s.run_id = r.run_id), "
        "       (SELECT count(*) FROM procrastinate_jobs j WHERE j.queueing_lock = 'run:' || r.run_id::text "
        "        AND j.task_name = 'hapex:execute_run' AND j.args ->> 'run_id' = r.run_id::text "
        "        AND j.args ->> 'client_id' = r.client_id::text) "
        "FROM runs r WHERE r.scheduled_for = %s", [slot]).fetchall()
    assert len(runs) == len(made)
    for client_id, run_id, status, error_class, steps, jobs in runs:
        if client_id == spent_client:
            assert (status, error_class, steps, jobs) == ("cancelled", "budget_exhausted", None, 0)
        else:
            assert (status, error_class, jobs) == ("queued", None, 1)
            assert steps == [f"{client_id} webhook.post {run_id}:0"]
    assert owner_conn.execute("SELECT count(*) FROM automations WHERE automation_id = ANY(%s) "
                              "AND next_run_at > now()", [[a for _, a in made]]).fetchone() == (len(made),)


def test_a_schedule_missed_for_days_catches_up_each_slot_once_and_plans_the_next(rt, intake_db, agent_db,
                                                                                owner_conn):
    now = datetime.now(UTC)
    last_due = now.replace(hour=8, minute=0, second=0, microsecond=0)
    if last_due > now:
        last_due -= timedelta(days=1)
    first = last_due - timedelta(days=2)
    [(_, automation_id)] = due_schedules(intake_db, agent_db, clients=1, per_client=1, slot=first)

    assert scheduler.fire_due_schedules(rt, now) == 3
    slots = owner_conn.execute("SELECT scheduled_for FROM runs WHERE automation_id = %s ORDER BY 1",
                               [automation_id]).fetchall()
    assert slots == [(first + timedelta(days=n),) for n in range(3)]
    assert owner_conn.execute("SELECT next_run_at FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (last_due + timedelta(days=1),)
    assert scheduler.fire_due_schedules(rt, now) == 0


def test_a_slot_that_already_has_its_run_starts_nothing_more_yet_its_next_slot_is_planned(rt, intake_db, agent_db,
                                                                                         owner_conn):
    """Its run, steps and job are one statement with the next slot: a conflicting slot inserts no steps
    and no job, and the schedule still moves on (or it would be read as due every minute)."""
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    [(client_id, automation_id)] = due_schedules(intake_db, agent_db, clients=1, per_client=1, slot=slot)
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC)) == 1
    planned = owner_conn.execute("SELECT next_run_at FROM automations WHERE automation_id = %s",
                                 [automation_id]).fetchone()[0]
    with tenant_transaction(agent_db, client_id) as conn:  # as if its move had been lost: the slot is due again
        conn.execute("UPDATE automations SET next_run_at = %s WHERE automation_id = %s", [slot, automation_id])

    def counts():
        return owner_conn.execute(
            "SELECT (SELECT count(*) FROM runs WHERE automation_id = %s), "
            "(SELECT count(*) FROM run_steps s JOIN runs r USING (run_id) WHERE r.automation_id = %s), "
            "(SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:execute_run')",
            [automation_id, automation_id]).fetchone()

    before = counts()
    assert scheduler.fire_due_schedules(rt, datetime.now(UTC)) == 0
    assert counts() == before == (1, 1, 1)
    assert owner_conn.execute("SELECT next_run_at FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (planned,)
