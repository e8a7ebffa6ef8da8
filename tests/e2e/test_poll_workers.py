"""'When something new arrives' with real worker processes: each new email starts exactly one run with two
workers polling at once, and after a worker is SIGKILLed in the middle of a poll the next poll neither
loses nor doubles an email."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import psycopg

from agent_service.polls.poller import poll_automation
from agent_service.queue import defer
from shared.db import tenant_transaction
from tests.e2e.conftest import wait_for
from tests.e2e.test_workers import cluster  # noqa: F401 - the fixture, shared with the other worker tests
from tests.run_fixtures import automation, tenant

HISTORY = "GET /gmail/v1/users/me/history"
NEW_EMAIL = {
    "name": "New invoice email",
    "trigger": {"kind": "poll", "source": "gmail.new_email", "every_minutes": 5,
                "options": {"query": "subject:invoice"}},
    "steps": [{"capability": "llm.summarise", "input": {"text": "New email: {{ trigger.email.subject }}"}}],
}


def primed_automation(c):
    """An enabled poll automation whose first poll (in this process) took the mailbox as seen."""
    t = tenant(c.rt, c.intake_db, c.agent_db)
    automation_id = automation(c.intake_db, t.client_id, NEW_EMAIL)
    c.rt.verify = c.standin.ca_file  # this process calls the stand-in too
    assert poll_automation(c.rt, client_id=t.client_id, automation_id=automation_id, now=datetime.now(UTC)).primed
    return t.client_id, automation_id


def poll_soon(c, client_id, automation_id, jobs: int) -> None:
    """Make the automation due and queue `jobs` poll jobs at once, as several workers' sweeps would."""
    with tenant_transaction(c.agent_db, client_id) as conn:
        conn.execute("UPDATE automations SET next_run_at = now() - interval '1 second' WHERE automation_id = %s",
                     [automation_id])
    with c.agent_db.transaction() as conn:
        for _ in range(jobs):
            defer(conn, "poll_new_items", queue="maintenance", args={"timestamp": int(datetime.now(UTC).timestamp())})


def poll_runs(c, automation_id) -> list[tuple[str, str]]:
    with psycopg.connect(c.database.owner_dsn) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT trigger_item, status FROM runs WHERE automation_id = %s ORDER BY trigger_item",
            [automation_id])]


def polls_pending(c) -> int:
    with psycopg.connect(c.database.owner_dsn) as conn:
        return conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:poll_new_items' "
                            "AND status IN ('todo', 'doing')").fetchone()[0]


def test_two_workers_polling_at_once_start_each_new_email_exactly_once(cluster):  # noqa: F811
    client_id, automation_id = primed_automation(cluster)
    new = cluster.standin.state.arrive(5)
    cluster.standin.state.hold(HISTORY)
    cluster.start_workers(2)
    poll_soon(cluster, client_id, automation_id, jobs=2)
    # Both workers poll; the one that holds the state waits on Gmail, the other passes it by.
    assert wait_for(lambda: cluster.standin.state.calls[HISTORY] >= 1), cluster.logs.read_text()[-3000:]
    assert wait_for(lambda: polls_pending(cluster) <= 1)
    cluster.standin.state.release(HISTORY)
    runs = wait_for(lambda: (r := poll_runs(cluster, automation_id)) and all(s == "succeeded" for _, s in r)
                    and len(r) >= 5 and r)
    assert [item for item, _ in runs] == new, cluster.logs.read_text()[-3000:]
    poll_soon(cluster, client_id, automation_id, jobs=2)
    assert wait_for(lambda: polls_pending(cluster) == 0)
    assert len(poll_runs(cluster, automation_id)) == 5
    assert cluster.standin.state.calls["POST /v1/messages"] == 5


def test_a_worker_killed_mid_poll_leaves_the_next_poll_to_start_each_email_once(cluster):  # noqa: F811
    client_id, automation_id = primed_automation(cluster)
    new = cluster.standin.state.arrive(4)
    cluster.standin.state.hold(HISTORY)
    cluster.start_workers(1)
    poll_soon(cluster, client_id, automation_id, jobs=1)
    assert wait_for(lambda: cluster.standin.state.calls[HISTORY] == 1), cluster.logs.read_text()[-3000:]
    victim = cluster.processes.pop()
    os.killpg(victim.pid, signal.SIGKILL)  # mid-poll: Gmail answered nothing yet, nothing was committed
    victim.wait(10)
    cluster.standin.state.release(HISTORY)
    assert poll_runs(cluster, automation_id) == []
    more = cluster.standin.state.arrive(1)
    cluster.start_workers(1)
    poll_soon(cluster, client_id, automation_id, jobs=1)
    runs = wait_for(lambda: (r := poll_runs(cluster, automation_id)) and all(s == "succeeded" for _, s in r)
                    and len(r) >= 5 and r)
    assert [item for item, _ in runs] == new + more, cluster.logs.read_text()[-3000:]
    poll_soon(cluster, client_id, automation_id, jobs=1)
    assert wait_for(lambda: polls_pending(cluster) == 0)
    assert len(poll_runs(cluster, automation_id)) == 5
