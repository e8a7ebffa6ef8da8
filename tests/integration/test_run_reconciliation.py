"""Every run reaches a final state, whatever the database or the queue did, and a failed run leaves no step running."""

from __future__ import annotations

import psycopg
import pytest
import responses

from agent_service import jobs
from agent_service.runs.engine import execute_run
from tests.integration.test_database_outage import refuse_connections
from tests.integration.test_run_engine import run_row, start, steps_of
from tests.run_fixtures import SLACK_POST, automation, stand_in_providers, tenant


def _job_of(owner_conn, run_id):
    return owner_conn.execute("SELECT id FROM procrastinate_jobs WHERE args->>'run_id' = %s",
                              [str(run_id)]).fetchone()[0]


def _interrupted_at_step_two(owner_conn, run_id):
    """What a worker leaves when it dies (or the database goes) during step 2 of 3."""
    owner_conn.execute("UPDATE runs SET status = 'running', started_at = now(), "
                       "queued_at = now() - interval '1 minute' WHERE run_id = %s", [run_id])
    owner_conn.execute("UPDATE run_steps SET status = 'succeeded', attempt_count = 1 WHERE run_id = %s "
                       "AND step_index = 0", [run_id])
    owner_conn.execute("UPDATE run_steps SET status = 'running', attempt_count = 1 WHERE run_id = %s "
                       "AND step_index = 1", [run_id])


def test_a_running_run_whose_job_failed_or_vanished_is_settled_and_one_still_queued_is_left_alone(
        rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    failed_job, vanished_job, live_job = (start(rt, t.client_id, automation_id).run_id for _ in range(3))
    for run_id in (failed_job, vanished_job, live_job):
        _interrupted_at_step_two(owner_conn, run_id)
    owner_conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s",
                       [_job_of(owner_conn, failed_job)])
    owner_conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [_job_of(owner_conn, vanished_job)])
    jobs.build_queue(rt.db.pool.conninfo, rt)  # the sweep task reads the runtime of its process

    assert jobs.reconcile_runs(rt) == 2
    for run_id in (failed_job, vanished_job):
        status, error_class, message = run_row(owner_conn, run_id)
        assert (status, error_class) == ("failed", "run_lost")
        assert "steps already done were not repeated" in message
        assert [(s[1], s[3]) for s in steps_of(owner_conn, run_id)] == [
            ("succeeded", None), ("failed", "outcome_unknown"), ("skipped", None)]
    assert run_row(owner_conn, live_job)[0] == "running"  # its job is still queued: a worker will settle it
    assert jobs.reconcile_runs(rt) == 0


@responses.activate
def test_a_database_outage_during_a_step_is_a_retried_interruption_and_the_retry_never_repeats_the_post(
        rt, intake_db, agent_db, pg_server, database):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    responses.remove(responses.POST, SLACK_POST)

    def posted_then_database_gone(request):
        refuse_connections(pg_server, database.name, allowed=False)
        return 200, {}, '{"ok": true, "channel": "C1", "ts": "1.0"}'

    responses.mock.add_callback(responses.POST, SLACK_POST, callback=posted_then_database_gone)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id)).run_id
    jobs.build_queue(database.agent_dsn, rt)
    try:
        with pytest.raises(jobs.RunInterrupted):
            jobs.execute_run(client_id=str(t.client_id), run_id=str(run_id))
    finally:
        refuse_connections(pg_server, database.name, allowed=True)
    with psycopg.connect(database.owner_dsn, autocommit=True) as conn:
        # Not an outcome: nothing about the post was written, and the run is not finished.
        assert run_row(conn, run_id)[0] == "running"
        assert [s[1] for s in steps_of(conn, run_id)] == ["succeeded", "succeeded", "running"]
        assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "failed"
        assert [(s[1], s[3]) for s in steps_of(conn, run_id)] == [
            ("succeeded", None), ("succeeded", None), ("failed", "outcome_unknown")]
    assert len([c for c in responses.calls if c.request.url == SLACK_POST]) == 1


@responses.activate
def test_a_run_failed_by_an_internal_error_mid_step_leaves_no_step_running(
        rt, intake_db, agent_db, owner_conn, monkeypatch):
    from agent_service.runs import engine

    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)

    def defect(*args, **kwargs):
        raise RuntimeError("a defect of ours")

    monkeypatch.setattr(engine, "run_capability", defect)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id)).run_id
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "failed"
    assert run_row(owner_conn, run_id)[1] == "internal_error"
    assert [(s[1], s[3]) for s in steps_of(owner_conn, run_id)] == [
        ("failed", "outcome_unknown"), ("skipped", None), ("skipped", None)]


def test_a_run_whose_job_a_superseded_worker_marked_succeeded_is_left_to_the_worker_that_took_it_over(
        rt, intake_db, agent_db, owner_conn):
    """A stalled worker's job is requeued and taken by another; when the stalled one's execution stops
    (superseded) procrastinate lets it mark the shared job succeeded. The sweep used to fail the run five
    seconds later while the second worker was still carrying it out."""
    t = tenant(rt, intake_db, agent_db)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id)).run_id
    _interrupted_at_step_two(owner_conn, run_id)
    job = _job_of(owner_conn, run_id)
    owner_conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", [job])
    owner_conn.execute("INSERT INTO procrastinate_events (job_id, type) VALUES (%s, 'started')", [job])
    jobs.build_queue(rt.db.pool.conninfo, rt)

    assert jobs.reconcile_runs(rt) == 0
    assert run_row(owner_conn, run_id)[0] == "running"
    # Once the run's time limit has passed since that worker took it, nobody can still be carrying it out.
    owner_conn.execute("UPDATE procrastinate_events SET at = now() - make_interval(secs => %s) WHERE job_id = %s",
                       [rt.limits.run_seconds + jobs.TAKEN_OVER_MARGIN_SECONDS + 1, job])
    assert jobs.reconcile_runs(rt) == 1
    assert run_row(owner_conn, run_id)[:2] == ("failed", "run_lost")
