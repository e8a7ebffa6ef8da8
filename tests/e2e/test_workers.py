"""Real worker processes sharing the queue through PostgreSQL, calling a provider stand-in."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_service.runs.triggers import start_run
from hapex.localstack.local_secrets import new_token
from hapex.localstack.local_tls import ensure_local_tls
from shared.config import Environment, resolve_catalog
from shared.db import Database, tenant_transaction
from tests.conftest import create_database_from, drop_database
from tests.e2e.conftest import stop_processes, wait_for
from tests.provider_standin import ProviderStandIn
from tests.run_fixtures import DIGEST, automation, runtime_for, tenant

KEY = os.urandom(32)


@pytest.fixture
def cluster(pg_server, migrated_template, tmp_path):
    """A database, a provider stand-in and a way to start workers against both."""
    database = create_database_from(pg_server, migrated_template)
    tls = ensure_local_tls(tmp_path / "tls")
    standin = ProviderStandIn(tls).__enter__()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_"))}
    env.update(standin.provider_environment())
    env.update(
        AGENT_DATABASE_URL=database.agent_dsn,
        AGENT_SERVICE_TOKEN=new_token(),
        AGENT_ADMIN_TOKEN=new_token(),
        CREDENTIAL_ENCRYPTION_KEY=base64.b64encode(KEY).decode(),
        ANTHROPIC_API_KEY="sk-ant-standin-" + uuid.uuid4().hex,
        HAPEX_GOOGLE_CLIENT_ID="g", HAPEX_GOOGLE_CLIENT_SECRET="gs",
        HAPEX_SLACK_CLIENT_ID="s", HAPEX_SLACK_CLIENT_SECRET="ss",
        WORKER_CONCURRENCY="4",
    )
    agent_db = Database(database.agent_dsn, name="test-cluster-agent").open()
    intake_db = Database(database.intake_dsn, name="test-cluster-intake").open()
    processes: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "workers.log"

    def start_workers(count: int, **settings: str) -> None:
        with open(logs, "ab") as log:
            for _ in range(count):
                processes.append(subprocess.Popen([sys.executable, "-m", "hapex.cli", "serve", "worker"],
                                                  env={**env, **settings},
                                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    class Cluster:
        pass

    c = Cluster()
    c.database, c.standin, c.env, c.agent_db, c.intake_db = database, standin, env, agent_db, intake_db
    c.start_workers, c.processes, c.logs = start_workers, processes, logs
    c.rt = runtime_for(agent_db, key=KEY, providers=resolve_catalog(Environment(standin.provider_environment())))
    try:
        yield c
    finally:
        stop_processes(processes)
        agent_db.close()
        intake_db.close()
        standin.__exit__()
        drop_database(pg_server, database.name)


def unfinished_jobs(database, task: str) -> int:
    import psycopg

    with psycopg.connect(database.owner_dsn) as conn:
        return conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status IN "
                            "('todo', 'doing')", [f"hapex:{task}"]).fetchone()[0]


def run_statuses(database) -> list[tuple]:
    import psycopg

    with psycopg.connect(database.owner_dsn) as conn:
        return conn.execute("SELECT status, scheduled_for FROM runs ORDER BY scheduled_for NULLS LAST").fetchall()


def test_the_digest_runs_end_to_end_through_the_queue_with_real_workers(cluster):
    t = tenant(cluster.rt, cluster.intake_db, cluster.agent_db)
    automation_id = automation(cluster.intake_db, t.client_id, DIGEST)
    with tenant_transaction(cluster.agent_db, t.client_id) as conn:
        started = start_run(conn, client_id=t.client_id, automation_id=automation_id, trigger_kind="manual")
    cluster.start_workers(2)
    finished = wait_for(lambda: [s for s, _ in run_statuses(cluster.database) if s in ("succeeded", "failed")])
    assert finished == ["succeeded"], cluster.logs.read_text()[-3000:]
    state = cluster.standin.state
    assert state.calls["POST /chat.postMessage"] == 1
    assert state.calls["POST /v1/messages"] == 1
    assert state.authorizations["GET /gmail/v1/users/me/messages"] == [f"Bearer {t.tokens['google_access']}"]
    logs = cluster.logs.read_text()
    for secret in (t.tokens["google_access"], t.tokens["slack_access"], state.email_body, state.llm_reply):
        assert secret not in logs
    assert started is not None


def test_a_schedule_with_two_workers_fires_exactly_once_per_due_slot(cluster):
    client_id = tenant(cluster.rt, cluster.intake_db, cluster.agent_db).client_id
    definition = {
        "name": "Every five minutes",
        "trigger": {"kind": "schedule", "cron": "*/5 * * * *", "timezone": "UTC"},
        "steps": [{"capability": "llm.summarise", "input": {"text": "Status of the day"}}],
    }
    automation_id = automation(cluster.intake_db, client_id, definition)
    now = datetime.now(UTC)
    first_slot = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5) - timedelta(minutes=10)
    with tenant_transaction(cluster.agent_db, client_id) as conn:
        conn.execute("UPDATE automations SET next_run_at = %s WHERE automation_id = %s", [first_slot, automation_id])
    cluster.start_workers(2)
    expected_slots = [first_slot + timedelta(minutes=5 * i) for i in range(3)]
    runs = wait_for(lambda: (r := run_statuses(cluster.database)) and all(s == "succeeded" for s, _ in r)
                    and len(r) >= 3 and r)
    assert [slot for _, slot in runs] == expected_slots, cluster.logs.read_text()[-3000:]
    # A duplicate could only come from a schedule sweep: once every sweep queued so far is done, none is left.
    assert wait_for(lambda: unfinished_jobs(cluster.database, "fire_due_schedules") == 0)
    assert len(run_statuses(cluster.database)) == 3
    assert cluster.standin.state.calls["POST /v1/messages"] == 3


def _kill_the_worker_during(cluster, call: str, definition: dict) -> tuple[uuid.UUID, object]:
    """Start the automation's run on one worker, SIGKILL it in the middle of `call` and start another.

    Nothing requeues the run's job by hand: the new worker sees that the dead one holds no liveness
    lock any more and requeues its job itself, within seconds rather than at a heartbeat timeout."""
    import signal
    import time

    t = tenant(cluster.rt, cluster.intake_db, cluster.agent_db)
    automation_id = automation(cluster.intake_db, t.client_id, definition)
    cluster.standin.state.hold(call)
    with tenant_transaction(cluster.agent_db, t.client_id) as conn:
        started = start_run(conn, client_id=t.client_id, automation_id=automation_id, trigger_kind="manual")
    cluster.start_workers(1)
    assert wait_for(lambda: cluster.standin.state.calls[call] == 1), cluster.logs.read_text()[-2000:]
    victim = cluster.processes.pop()
    os.killpg(victim.pid, signal.SIGKILL)  # mid-call: the provider may or may not have acted
    victim.wait(10)
    cluster.standin.state.release(call)
    cluster.start_workers(1)
    cluster.restarted_at = time.monotonic()
    return started.run_id, t


def _steps(cluster, run_id) -> list[tuple[str, int]]:
    import psycopg

    with psycopg.connect(cluster.database.owner_dsn) as conn:
        return [tuple(r) for r in conn.execute("SELECT status, attempt_count FROM run_steps WHERE run_id = %s "
                                                "ORDER BY step_index", [run_id])]


def test_a_worker_killed_mid_step_leaves_the_run_failed_cleanly_and_the_step_not_repeated(cluster):
    import time

    import psycopg

    run_id, _ = _kill_the_worker_during(cluster, "POST /chat.postMessage", DIGEST)
    assert wait_for(lambda: [s for s, _ in run_statuses(cluster.database)] == ["failed"])
    print(f"stalled run settled {time.monotonic() - cluster.restarted_at:.1f} s after a worker started")
    with psycopg.connect(cluster.database.owner_dsn) as conn:
        error_class = conn.execute("SELECT error_class FROM runs WHERE run_id = %s", [run_id]).fetchone()
    assert error_class == ("worker_interrupted",)
    assert [status for status, _ in _steps(cluster, run_id)] == ["succeeded", "succeeded", "failed"]
    assert cluster.standin.state.calls["POST /chat.postMessage"] == 1


def test_a_worker_killed_during_a_reading_step_is_resumed_from_stored_outputs_by_another_worker(cluster):
    run_id, t = _kill_the_worker_during(cluster, "POST /v1/messages", {**DIGEST, "store_outputs": True})
    assert wait_for(lambda: [s for s, _ in run_statuses(cluster.database)] == ["succeeded"]), \
        cluster.logs.read_text()[-3000:]
    calls = cluster.standin.state.calls
    assert calls["GET /gmail/v1/users/me/messages"] == 1  # the search ran once: its stored output fed the resume
    assert calls["POST /v1/messages"] == 2  # the summary was interrupted, so asked again
    assert calls["POST /chat.postMessage"] == 1
    assert _steps(cluster, run_id) == [("succeeded", 1), ("succeeded", 2), ("succeeded", 1)]
    logs = cluster.logs.read_text()
    for secret in (t.tokens["google_access"], cluster.standin.state.email_body, cluster.standin.state.llm_reply):
        assert secret not in logs


def _job_status(cluster, run_id) -> str | None:
    import psycopg

    with psycopg.connect(cluster.database.owner_dsn) as conn:
        row = conn.execute("SELECT status::text FROM procrastinate_jobs WHERE args->>'run_id' = %s",
                           [str(run_id)]).fetchone()
    return row[0] if row else None


def test_a_worker_stopped_with_a_step_outliving_its_grace_hands_the_job_back_and_the_next_start_settles_it(cluster):
    import signal

    t = tenant(cluster.rt, cluster.intake_db, cluster.agent_db)
    automation_id = automation(cluster.intake_db, t.client_id, DIGEST)
    posting = "POST /chat.postMessage"
    cluster.standin.state.hold(posting)
    with tenant_transaction(cluster.agent_db, t.client_id) as conn:
        started = start_run(conn, client_id=t.client_id, automation_id=automation_id, trigger_kind="manual")
    cluster.start_workers(1, WORKER_GRACE_SECONDS="1")
    assert wait_for(lambda: cluster.standin.state.calls[posting] == 1), cluster.logs.read_text()[-2000:]
    stopping = cluster.processes.pop()
    # Twice, as a terminal's Ctrl-C and then a supervisor's SIGTERM: the second must not cut the grace short.
    stopping.send_signal(signal.SIGINT)
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(30) == 0
    cluster.standin.state.release(posting)
    assert "its job was handed back" in cluster.logs.read_text()
    assert _job_status(cluster, started.run_id) == "todo"  # not left doing for a stall sweep to find
    cluster.start_workers(1)
    assert wait_for(lambda: [s for s, _ in run_statuses(cluster.database)] == ["failed"])
    assert [status for status, _ in _steps(cluster, started.run_id)] == ["succeeded", "succeeded", "failed"]
    assert cluster.standin.state.calls[posting] == 1  # outcome unknown: never posted again
