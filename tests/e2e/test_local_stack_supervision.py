"""`hapex run` (what `make run` starts): it keeps serving across a database restart, and Ctrl-C with a
step in flight leaves no run running.

The stack runs on a test database of its own; its "restart" is every connection to that database cut
and new ones refused for a while, as tests/integration/test_database_outage.py does (a server restart
as its clients see it, without a fresh embedded server's initdb in the test's time)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from agent_service.runs.triggers import start_run
from shared.config import Environment, resolve_catalog
from shared.db import Database, tenant_transaction
from tests.e2e.conftest import free_port, wait_for
from tests.integration.test_database_outage import refuse_connections
from tests.provider_standin import ProviderStandIn
from tests.run_fixtures import DIGEST, automation, runtime_for, tenant

KEY = os.urandom(32)
POSTING = "POST /chat.postMessage"


def ready(url: str, ca: str) -> bool:
    try:
        return requests.get(url + "/readyz", verify=ca, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def standin(stack_tls):
    with ProviderStandIn(stack_tls) as server:
        yield server


def test_the_local_stack_survives_a_database_restart_and_ctrl_c_mid_step_leaves_no_run_running(
        tmp_path: Path, standin, pg_server, database):
    data = tmp_path / "data"
    intake_port, agent_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_"))}
    env["DATABASE_URL"] = database.owner_dsn
    env.update(standin.provider_environment())
    env.update(HAPEX_DATA_DIR=str(data), INTAKE_PORT=str(intake_port), AGENT_PORT=str(agent_port), HAPEX_WORKERS="1",
               CREDENTIAL_ENCRYPTION_KEY=base64.b64encode(KEY).decode(), WEB_CONCURRENCY="1",
               ANTHROPIC_API_KEY="sk-ant-standin-" + uuid.uuid4().hex, HAPEX_TEST_MODE="1",
               HAPEX_GOOGLE_CLIENT_ID="g", HAPEX_GOOGLE_CLIENT_SECRET="gs",
               HAPEX_SLACK_CLIENT_ID="s", HAPEX_SLACK_CLIENT_SECRET="ss")
    output = tmp_path / "stack.log"
    with open(output, "wb") as log:
        # Its own session, as a terminal's foreground job: Ctrl-C is SIGINT to the whole process group.
        stack = subprocess.Popen([sys.executable, "-m", "hapex.cli", "run"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: "press Ctrl-C" in output.read_text() or stack.poll() is not None), output.read_text()
        assert stack.poll() is None, output.read_text()
        ca = str(data / "tls" / "ca.pem")
        intake, agent = f"https://localhost:{intake_port}", f"https://localhost:{agent_port}"
        assert ready(intake, ca) and ready(agent, ca)

        # The database restarts under the running stack.
        refuse_connections(pg_server, database.name, allowed=False)
        try:
            assert wait_for(lambda: not ready(agent, ca), timeout=30)
        finally:
            refuse_connections(pg_server, database.name, allowed=True)
        restarted = time.monotonic()
        assert wait_for(lambda: ready(intake, ca) and ready(agent, ca), timeout=60), output.read_text()
        print(f"local stack ready {time.monotonic() - restarted:.1f} s after the database returned")
        assert stack.poll() is None and "exited" not in output.read_text(), output.read_text()

        # A run whose Slack post is in flight when Ctrl-C comes: the worker finishes it, then the stack stops.
        agent_db = Database(database.agent_dsn, name="test-stack-agent").open()
        intake_db = Database(database.intake_dsn, name="test-stack-intake").open()
        try:
            rt = runtime_for(agent_db, key=KEY, providers=resolve_catalog(Environment(standin.provider_environment())))
            t = tenant(rt, intake_db, agent_db)
            automation_id = automation(intake_db, t.client_id, DIGEST)
            standin.state.hold(POSTING)
            with tenant_transaction(agent_db, t.client_id) as conn:
                started = start_run(conn, client_id=t.client_id, automation_id=automation_id, trigger_kind="manual")
            assert started is not None
            assert wait_for(lambda: standin.state.calls[POSTING] == 1, timeout=60), output.read_text()
        finally:
            agent_db.close()
            intake_db.close()
        # Connections stalled before or in the TLS handshake (a browser's speculative ones) do not hold a stop up.
        stalled = [socket.create_connection(("127.0.0.1", port)) for port in (intake_port, agent_port) * 2]
        for half_hello in stalled[2:]:
            half_hello.send(b"\x16\x03\x01")
        os.killpg(stack.pid, signal.SIGINT)
        assert wait_for(lambda: "hapex: stopping" in output.read_text(), timeout=30)
        standin.state.release(POSTING)  # the step in flight ends during the worker's grace period
        assert stack.wait(timeout=120) == 0, output.read_text()
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()

    text = output.read_text()
    assert "hapex: stopped" in text
    assert "SIGKILL" not in text and "killing it" not in text, text  # no gunicorn worker, no Hapex worker killed
    assert text.count("Worker exiting") == 2, text  # each gunicorn's one worker exited by itself
    for connection in stalled:
        connection.close()
    with psycopg.connect(database.owner_dsn) as conn:
        status = conn.execute("SELECT status FROM runs WHERE run_id = %s", [started.run_id]).fetchone()
        assert status == ("succeeded",), text
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone() == (0,)
    assert standin.state.calls[POSTING] == 1
