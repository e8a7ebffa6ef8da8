""""Test this step" in the builder: a reading step runs once on the client's real connection (audited, not
stored), a writing step and a Claude step are only shown with what they would send, a condition is worked out."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import responses

from tests.integration.test_automations_pages import client_of, count, digest_form, press
from tests.run_fixtures import ANTHROPIC, GMAIL, SLACK_POST, G, connect, runtime_of, stand_in_providers

CANARY = "CANARY-TESTED-SUBJECT-81f2"


def result_of(body: str, step: int) -> str:
    found = re.search(r'<section class="test-result" aria-label="Test of step ' + str(step)
                      + r'"[^>]*>(.*?)</section>', body, re.S)
    assert found, "no test result shown"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def test_testing_a_reading_step_runs_it_on_the_real_connection_shows_the_output_and_stores_nothing(
        signed_up, owner_conn, agent_db, agent_service_app):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    connect(runtime_of(agent_service_app, agent_db), agent_db, client_id, "google", [G + "gmail.readonly"])
    form = digest_form(visitor)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("https://agent.test")
        stand_in_providers(mock, email_body=CANARY)
        page = press(visitor, form, "test:0")
        called = [c.request.url.split("?")[0] for c in mock.calls]
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    shown = result_of(page.get_data(as_text=True), 1)
    assert "What “Search emails” returned just now, from your real connection. It is not stored." \
        in html.unescape(shown)
    assert f"Order problem {CANARY}" in shown
    assert f"{GMAIL}/messages" in called
    assert ANTHROPIC not in called and SLACK_POST not in called
    assert owner_conn.execute("SELECT service, reason, run_id FROM credential_access WHERE client_id = %s",
                              [client_id]).fetchall() == [("agent", "step_test", None)]
    assert count(owner_conn, "runs") == 0 and count(owner_conn, "automations") == 0
    assert CANARY not in str(owner_conn.execute("SELECT row_to_json(c) FROM cost_events c").fetchall())


def test_a_writing_step_is_never_run_by_a_test_it_shows_what_it_would_send_with_the_samples(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "",
            "steps-2-value-text": "Summary: {{ steps.2.text }} from {{ steps.1.messages.1.sender }}",
            "steps-2-sample-steps.2.text": "<b>Two wrote</b>", "steps-2-sample-steps.1.messages.1.sender": "ann@x.io"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("https://agent.test")
        page = press(visitor, form, "test:2")
        assert not [c for c in mock.calls if not c.request.url.startswith("https://agent.test")]
    body = page.get_data(as_text=True)
    assert "<b>Two wrote</b>" not in body  # escaped, shown as text
    shown = result_of(body, 3)
    assert "This step writes, so a test never runs it." in shown
    assert '"text": "Summary: <b>Two wrote</b> from ann@x.io"' in shown
    assert 'value="ann@x.io"' in body  # the samples come back for the next press


def test_a_claude_step_is_shown_not_run_and_a_condition_is_worked_out(signed_up):
    visitor, _ = signed_up
    form = digest_form(visitor)
    shown = result_of(press(visitor, {**form, "steps-1-sample-steps.1.messages": '[{"subject": "Hi"}]'},
                            "test:1").get_data(as_text=True), 2)
    assert "A Claude step is billed per call, so a test does not run it." in shown
    assert '"subject": "Hi"' in shown
    press(visitor, form, "add_step", new_capability="condition.continue_if")
    form.update({"steps-3-capability": "condition.continue_if", "steps-3-value-value": "{{ steps.2.text }}",
                 "steps-3-value-operator": "contains", "steps-3-value-compare_to": "urgent",
                 "steps-3-sample-steps.2.text": "An URGENT invoice"})
    shown = result_of(press(visitor, form, "test:3").get_data(as_text=True), 4)
    assert "The condition holds: the run would go on." in shown


def test_testing_a_step_of_a_provider_not_connected_says_so(signed_up):
    visitor, _ = signed_up
    shown = result_of(press(visitor, digest_form(visitor), "test:0").get_data(as_text=True), 1)
    assert "Google Workspace is not connected." in shown


def test_slack_connection_unused_by_a_test(signed_up, owner_conn, agent_db, agent_service_app):
    visitor, email = signed_up
    connect(runtime_of(agent_service_app, agent_db), agent_db, client_of(owner_conn, email), "slack",
            ["chat:write"], expires_in=timedelta(days=365))
    press(visitor, digest_form(visitor), "test:2")
    assert count(owner_conn, "credential_access") == 0


def test_a_sample_of_deeply_nested_json_is_refused_in_words_not_a_500(signed_up):
    """A whole earlier output's sample is read as JSON through the door's load_json (depth and text bounded):
    Python's json.loads on 2,500 nested brackets raised RecursionError, a 500."""
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-1-sample-steps.1.messages": "[" * 2500 + "]" * 2500}
    page = press(visitor, form, "test:1")
    assert page.status_code == 200
    shown = result_of(page.get_data(as_text=True), 2)
    assert "nest at most 32 levels" in shown
