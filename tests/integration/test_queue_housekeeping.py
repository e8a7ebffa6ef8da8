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
