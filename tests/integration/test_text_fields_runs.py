"""Text with fields in real runs: filled in once from the trigger and earlier steps, hostile values stay data."""

from __future__ import annotations

import json
import logging
from datetime import UTC

import responses

from agent_service.runs.engine import execute_run
from agent_service.runs.triggers import start_run
from shared.db import tenant_transaction
from tests.run_fixtures import ANTHROPIC, SLACK_POST, automation, stand_in_providers, tenant

ALERT = {
    "name": "Invoice alert",
    "trigger": {"kind": "manual"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "subject:invoice"}},
        {"capability": "llm.summarise", "input": {"text": "Emails: {{ steps.1.messages }}"}},
        {"capability": "slack.post_message", "input": {
            "channel": "#accounts",
            "text": "New invoice from {{ steps.1.messages.1.sender }} ({{ steps.1.messages.1.subject }}): "
                    "{{ steps.2.text }} [run of {{ trigger.started_at }}]"}},
    ],
}
# What a hostile sender or a manipulated model could put in a value: other fields, Jinja, markup.
HOSTILE = "{{ trigger.started_at }} {% for x in range(9**9) %}{{ x }}{% endfor %} \\{{ steps.2.text }} <b>"


def start(rt, client_id, automation_id):
    with tenant_transaction(rt.db, client_id) as conn:
        return start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")


def slack_text() -> str:
    call = [c for c in responses.calls if c.request.url == SLACK_POST][-1]
    return json.loads(call.request.body)["text"]


@responses.activate
def test_fields_are_filled_in_from_earlier_steps_and_the_trigger(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id, ALERT)
    stand_in_providers(responses.mock, email_body="42", llm_reply="One invoice of 500 EUR.")
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    queued_at = owner_conn.execute("SELECT queued_at FROM runs WHERE run_id = %s", [started.run_id]).fetchone()[0]
    assert slack_text() == (f"New invoice from customer@example.com (Order problem 42): One invoice of 500 EUR. "
                            f"[run of {queued_at.astimezone(UTC).isoformat(timespec='seconds')}]")
    prompt = json.loads([c for c in responses.calls if c.request.url == ANTHROPIC][0].request.body)
    assert "customer@example.com" in json.dumps(prompt["messages"])


@responses.activate
def test_hostile_provider_values_are_inserted_as_they_are_and_never_read_again(
        rt, intake_db, agent_db, owner_conn, caplog):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id, ALERT)
    stand_in_providers(responses.mock, email_body=HOSTILE, llm_reply=HOSTILE)
    with caplog.at_level(logging.DEBUG):
        started = start(rt, t.client_id, automation_id)
        assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    text = slack_text()
    assert text.startswith(f"New invoice from customer@example.com (Order problem {HOSTILE}): {HOSTILE} [run of ")
    assert text.count("{% for x") == 2  # inserted verbatim, never evaluated or expanded
    records = json.dumps(owner_conn.execute("SELECT row_to_json(s) FROM run_steps s").fetchall(), default=str)
    assert "range(9**9)" not in records and "range(9**9)" not in caplog.text


@responses.activate
def test_a_filled_in_text_that_breaks_the_steps_rules_fails_that_step_without_sending(
        rt, intake_db, agent_db, owner_conn):
    definition = json.loads(json.dumps(ALERT))
    definition["steps"][2]["input"]["channel"] = "{{ steps.2.text }}"
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id, definition)
    stand_in_providers(responses.mock, llm_reply="not a channel")
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert owner_conn.execute("SELECT error_class FROM runs WHERE run_id = %s", [started.run_id]).fetchone() == (
        "input_invalid",)
    assert not [c for c in responses.calls if c.request.url == SLACK_POST]
