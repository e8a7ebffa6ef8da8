"""A worker's reconnection backoff and what counts as an outage; `hapex run`'s restart of a child that dies."""

from __future__ import annotations

import sys

import procrastinate.exceptions
import psycopg

from agent_service.worker import Backoff, is_database_outage, refused_credentials
from hapex.localstack.stack import Child, Supervised, children
from shared.db import DatabaseUnavailable


def test_the_reconnection_backoff_doubles_is_capped_and_jittered():
    lowest = Backoff(uniform=lambda: 0.0)
    assert [lowest.next_delay() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.5, 2.5]
    highest = Backoff(uniform=lambda: 1.0)
    assert [highest.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    highest.reset()
    assert highest.next_delay() == 0.5


def _wrapped(cause: BaseException) -> procrastinate.exceptions.ConnectorException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise procrastinate.exceptions.ConnectorException() from exc
    except procrastinate.exceptions.ConnectorException as outer:
        return outer


def test_a_lost_database_is_an_outage_and_a_refused_password_or_a_defect_is_not():
    assert is_database_outage(_wrapped(psycopg.OperationalError("server closed the connection unexpectedly")))
    assert is_database_outage(DatabaseUnavailable())
    refused = _wrapped(psycopg.OperationalError('FATAL:  password authentication failed for user "hapex_agent"'))
    assert refused_credentials(refused)
    assert not refused_credentials(_wrapped(psycopg.OperationalError("server closed the connection")))
    assert not is_database_outage(_wrapped(psycopg.errors.RaiseException("Job was not found")))
    assert not is_database_outage(TypeError("a defect"))


def test_a_child_that_dies_is_restarted_with_a_growing_delay_and_said_so():
    dies = Supervised(Child("worker", [sys.executable, "-c", "raise SystemExit(1)"], {}))
    dies.start()
    assert dies.process is not None
    dies.process.wait()
    assert dies.watch(now=100.0) == "hapex: worker exited (status 1); restarting it in 1 s"
    assert dies.watch(now=100.5) is None  # not yet
    assert dies.watch(now=101.0) == "hapex: worker restarted"
    dies.process.wait()
    assert dies.watch(now=dies.started_at + 1) == "hapex: worker exited (status 1); restarting it in 2 s"


def test_the_stack_is_one_table_of_children_each_with_its_own_environment():
    env = {"INTAKE_PORT": "8443", "AGENT_PORT": "8444", "CREDENTIAL_ENCRYPTION_KEY": "k", "PATH": "/bin",
           "WORKER_GRACE_SECONDS": "45"}
    table = {child.name: child for child in children(env, workers=2)}
    assert list(table) == ["intake", "agent", "worker 1", "worker 2"]
    assert "CREDENTIAL_ENCRYPTION_KEY" not in table["intake"].env
    assert table["worker 1"].stop_seconds > 45  # a worker's grace period runs out before it is killed
    assert table["intake"].health_url == "https://localhost:8443/healthz"
