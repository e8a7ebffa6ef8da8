"""The queue's finished jobs are removed by the builtin procrastinate task, on its schedule."""

from __future__ import annotations

from types import SimpleNamespace

from agent_service import jobs
from tests.factories import run_coroutine
from tests.run_fixtures import runtime_for


def test_old_finished_jobs_are_removed_and_recent_or_unfinished_ones_kept(agent_db, database, owner_conn):
    for status, age_hours in (("succeeded", 100), ("succeeded", 1), ("failed", 100), ("failed", 800), ("todo", 900)):
        job_id = owner_conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, args) "
            "VALUES ('runs', 'hapex:execute_run', %s, '{}') RETURNING id", [status]).fetchone()[0]
        owner_conn.execute("INSERT INTO procrastinate_events (job_id, type, at) VALUES "
                           "(%s, 'deferred', now() - make_interval(hours => %s))", [job_id, age_hours])
    app = jobs.build_queue(database.agent_dsn, runtime_for(agent_db))

    async def run() -> None:
        async with app.open_async():
            # The builtin task only reads context.app (its job manager).
            await jobs.remove_finished_jobs.func(SimpleNamespace(app=app), timestamp=0)

    run_coroutine(run)
    left = owner_conn.execute("SELECT status::text FROM procrastinate_jobs ORDER BY status").fetchall()
    assert sorted(s for (s,) in left) == ["failed", "succeeded", "todo"]


def test_a_starting_worker_requeues_the_jobs_of_dead_workers_at_once_and_sweeps_again_later(
        agent_db, database, owner_conn):
    alive = owner_conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()[0]
    dead = owner_conn.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES "
                              "(now() - interval '10 minutes') RETURNING id").fetchone()[0]
    job_of = {}
    for worker in (alive, dead):
        job_of[worker] = owner_conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, args, worker_id) "
            "VALUES ('runs', 'hapex:execute_run', 'doing', '{}', %s) RETURNING id", [worker]).fetchone()[0]
    app = jobs.build_queue(database.agent_dsn, runtime_for(agent_db))

    async def start() -> int:
        async with app.open_async():
            return await jobs.settle_stalled_jobs_at_start(app)

    assert run_coroutine(start) == 1

    def status(job_id):
        return owner_conn.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s", [job_id]).fetchone()[0]

    assert status(job_of[dead]) == "todo"  # taken by the next free worker, whose run engine settles the run
    assert status(job_of[alive]) == "doing"  # a live worker's job is left alone
    later = owner_conn.execute(
        "SELECT scheduled_at > now() FROM procrastinate_jobs WHERE task_name = 'hapex:retry_stalled_jobs' "
        "AND status = 'todo'").fetchall()
    assert later == [(True,)]  # for a worker that died just before this start and is not yet silent for long
