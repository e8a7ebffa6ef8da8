"""Retry of a failed run from the intake's run page: a new run, linked both ways, from the failed step when
outputs are stored (the steps before it are not called again), otherwise from the start."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses

from agent_service.runs.engine import execute_run
from tests.integration.conftest import BASE_URL
from tests.integration.test_automations_pages import client_of, save_digest, text_of
from tests.run_fixtures import ANTHROPIC, GMAIL, SLACK_POST, G, connect, runtime_of, stand_in_providers


def failed_digest(visitor, email, owner_conn, agent_db, agent_service_app, *, store_outputs: bool):
    client_id = client_of(owner_conn, email)
    automation_id = save_digest(visitor, owner_conn, **({"store_outputs": "on"} if store_outputs else {}))
    rt = runtime_of(agent_service_app, agent_db)
    connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"])
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/run", token_from=page).status_code == 303
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE automation_id = %s", [automation_id]).fetchone()[0]
    with responses.RequestsMock() as mock:
        stand_in_providers(mock)
        mock.replace(responses.POST, SLACK_POST, json={"ok": False, "error": "channel_not_found"})
        assert execute_run(rt, client_id=client_id, run_id=run_id) == "failed"
    return rt, client_id, run_id


@pytest.mark.parametrize(("store_outputs", "from_step"), [(True, 2), (False, 0)])
def test_retry_starts_a_linked_run_from_the_failed_step_when_outputs_are_stored_else_from_the_start(
        signed_up, owner_conn, agent_db, agent_service_app, store_outputs, from_step):
    visitor, email = signed_up
    rt, client_id, failed = failed_digest(visitor, email, owner_conn, agent_db, agent_service_app,
                                          store_outputs=store_outputs)
    page = text_of(visitor.get(f"/runs/{failed}"))
    assert "Retry" in page
    response = visitor.post(f"/runs/{failed}/retry", token_from=f"/runs/{failed}")
    assert response.status_code == 303
    retry = response.headers["Location"].rsplit("/", 1)[1]
    assert owner_conn.execute("SELECT retry_of, status, trigger_kind FROM runs WHERE run_id = %s",
                              [retry]).fetchone() == (failed, "queued", "manual")
    shown = text_of(visitor.get(f"/runs/{retry}"))
    assert (f"Retrying from step {from_step + 1}" if from_step else "Retrying from the first step.") in shown
    assert f"/runs/{failed}" in shown
    assert f"/runs/{retry}" in text_of(visitor.get(f"/runs/{failed}"))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        stand_in_providers(mock)
        assert execute_run(rt, client_id=client_id, run_id=retry) == "succeeded"
        called = [c.request.url.split("?")[0] for c in mock.calls]
        slack = [json.loads(c.request.body) for c in mock.calls if c.request.url == SLACK_POST]
    reran_reads = any(url.startswith(GMAIL) for url in called) or ANTHROPIC in called
    assert reran_reads is (from_step == 0)
    assert called.count(SLACK_POST) == 1
    assert slack[0]["text"] == "Two customers wrote."  # reused or made again, the summary reached Slack
    steps = owner_conn.execute("SELECT status, counts FROM run_steps WHERE run_id = %s ORDER BY step_index",
                               [retry]).fetchall()
    assert [s[0] for s in steps] == ["succeeded"] * 3
    assert [s[1] for s in steps[:from_step]] == [{"reused": 1}] * from_step


def test_a_second_retry_press_gives_the_same_retry_and_a_successful_run_cannot_be_retried(
        signed_up, owner_conn, agent_db, agent_service_app):
    visitor, email = signed_up
    _, _, failed = failed_digest(visitor, email, owner_conn, agent_db, agent_service_app, store_outputs=True)
    first = visitor.post(f"/runs/{failed}/retry", token_from=f"/runs/{failed}")
    second = visitor.post(f"/runs/{failed}/retry", token_from=f"/runs/{failed}")
    assert first.headers["Location"] == second.headers["Location"]
    assert owner_conn.execute("SELECT count(*) FROM runs WHERE retry_of = %s", [failed]).fetchone() == (1,)
    assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:execute_run'"
                              ).fetchone() == (2,)
    retry = first.headers["Location"].rsplit("/", 1)[1]
    refused = visitor.post(f"/runs/{retry}/retry", token_from=f"/runs/{retry}")
    assert refused.status_code == 409
    assert "Only a failed run can be retried." in text_of(refused)


def test_the_run_page_names_steps_as_the_builder_does_and_links_a_fix_for_each_failure(
        signed_up, owner_conn, agent_db, agent_service_app):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    automation_id = save_digest(visitor, owner_conn)
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/run", token_from=page).status_code == 303
    run_id = owner_conn.execute("SELECT run_id FROM runs").fetchone()[0]
    assert execute_run(runtime_of(agent_service_app, agent_db), client_id=client_id, run_id=run_id) == "failed"
    body = visitor.get(f"/runs/{run_id}").get_data(as_text=True)
    shown = text_of(visitor.get(f"/runs/{run_id}"))
    assert "Step 1 (Search emails): Google Workspace is not connected." in shown
    assert "Post to Slack" in shown and "Summarise with Claude" in shown
    assert f'<a href="/automations/{automation_id}#access">Connect it</a>' in body


def test_a_forged_retry_without_a_token_starts_nothing(signed_up, owner_conn, agent_db, agent_service_app):
    visitor, email = signed_up
    _, _, failed = failed_digest(visitor, email, owner_conn, agent_db, agent_service_app, store_outputs=False)
    response = visitor.client.post(f"/runs/{failed}/retry", data={}, base_url=BASE_URL,
                                   headers={"Referer": BASE_URL + "/"})
    assert response.status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM runs WHERE retry_of = %s", [failed]).fetchone() == (0,)


@pytest.mark.parametrize("status", ["archived", "deleted"])
def test_a_failed_run_of_an_archived_or_deleted_automation_is_not_retried(
        signed_up, owner_conn, agent_db, agent_service_app, status):
    """Archive and delete-keeping-records say the automation never runs again; Retry must not run it."""
    visitor, email = signed_up
    _, _, failed = failed_digest(visitor, email, owner_conn, agent_db, agent_service_app, store_outputs=False)
    owner_conn.execute("UPDATE automations SET status = %s", [status])
    response = visitor.post(f"/runs/{failed}/retry", token_from=f"/runs/{failed}")
    assert response.status_code in (404, 409)
    assert owner_conn.execute("SELECT count(*) FROM runs WHERE retry_of = %s", [failed]).fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:execute_run'"
                              ).fetchone() == (1,)
