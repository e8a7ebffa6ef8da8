"""A "continue only if" step in real runs: a condition that holds goes on; one that does not stops the run,
recorded as stopped by condition (not a failure, no cost), with nothing after it done."""

from __future__ import annotations

import json

import pytest
import responses

from agent_service.runs.engine import execute_run
from agent_service.runs.triggers import start_run
from shared.db import tenant_transaction
from tests.run_fixtures import ANTHROPIC, SLACK_POST, automation, tenant


def big_invoices(compare_to: str) -> dict:
    return {
        "name": "Big invoices",
        "trigger": {"kind": "manual"},
        "steps": [
            {"capability": "llm.extract", "input": {"text": "Invoice for €1,250.00", "fields": ["amount"]}},
            {"capability": "condition.continue_if", "input": {
                "value": "{{ steps.1.values.amount }}", "operator": "greater_than", "compare_to": compare_to,
                "compare_as": "number"}},
            {"capability": "slack.post_message", "input": {"channel": "#accounts",
                                                           "text": "Big invoice: {{ steps.1.values.amount }}"}},
        ],
    }


def stand_in(mock: responses.RequestsMock, amount: str) -> None:
    mock.post(ANTHROPIC, json={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": json.dumps({"amount": amount})}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 100, "output_tokens": 10}})
    mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1795900000.000100"})


def run_once(rt, intake_db, agent_db, definition):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id, definition)
    with tenant_transaction(rt.db, t.client_id) as conn:
        started = start_run(conn, client_id=t.client_id, automation_id=automation_id, trigger_kind="manual")
    return started.run_id, execute_run(rt, client_id=t.client_id, run_id=started.run_id)


@responses.activate
def test_a_condition_that_holds_lets_the_next_step_run(rt, intake_db, agent_db, owner_conn):
    stand_in(responses.mock, "€1,250.00")
    run_id, status = run_once(rt, intake_db, agent_db, big_invoices("500"))
    assert status == "succeeded", owner_conn.execute("SELECT error_message FROM runs").fetchall()
    slack = [c for c in responses.calls if c.request.url == SLACK_POST]
    assert json.loads(slack[0].request.body)["text"] == "Big invoice: €1,250.00"
    assert owner_conn.execute("SELECT status, counts FROM run_steps WHERE run_id = %s AND step_index = 1",
                              [run_id]).fetchone() == ("succeeded", {"passed": 1, "unreadable": 0})


@responses.activate
@pytest.mark.parametrize(("amount", "reason"),
                         [("€1,250.00", ""), ("unknown", " (a value was not of the type compared)")])
def test_a_condition_that_does_not_hold_stops_the_run_as_stopped_not_failed_and_nothing_after_runs(
        rt, intake_db, agent_db, owner_conn, amount, reason):
    stand_in(responses.mock, amount)
    run_id, status = run_once(rt, intake_db, agent_db, big_invoices("5000"))
    assert status == "stopped"
    assert not [c for c in responses.calls if c.request.url == SLACK_POST]
    assert owner_conn.execute("SELECT status, error_class, error_message, finished_at IS NOT NULL FROM runs "
                              "WHERE run_id = %s", [run_id]).fetchone() == (
        "stopped", "by_condition",
        f"Step 2 (Continue only if): the condition was not met{reason}, so the run stopped there.", True)
    assert [r[0] for r in owner_conn.execute("SELECT status FROM run_steps WHERE run_id = %s ORDER BY step_index",
                                             [run_id]).fetchall()] == ["succeeded", "succeeded", "skipped"]
    # Only Claude's call is billed: the condition makes no call and costs nothing.
    assert owner_conn.execute("SELECT source, step_index FROM cost_events WHERE run_id = %s",
                              [run_id]).fetchall() == [("llm", 0)]
    # Executing it again (a retried job) does nothing more.
    assert execute_run(rt, client_id=owner_conn.execute("SELECT client_id FROM runs WHERE run_id = %s",
                                                        [run_id]).fetchone()[0], run_id=run_id) == "stopped"
    assert "1,250" not in json.dumps(owner_conn.execute("SELECT row_to_json(r) FROM runs r").fetchall(), default=str)
