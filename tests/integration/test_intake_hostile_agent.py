"""The intake's pages when the agent answers badly: a clear page or JSON error, never a 500, never its text.

The real agent app serves every call but the one a test replaces with a broken or hostile
answer (HTML on a 5xx, a huge error message, an unexpected status, a body of the wrong shape).
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
from typing import Any

import pytest
import requests

from tests.integration.conftest import PASSWORD, Visitor, WSGIAdapter, build_intake_app, new_email
from tests.integration.test_automations_pages import (
    HOOK_URL,
    connect_digest,
    digest_form,
    followed,
    hook,
    press,
    save_digest,
)

CANARY = "CANARY-HOSTILE-AGENT-41c9"
AGENT_UNREACHABLE = "Nothing was started; try again shortly."


class HostileAgent(WSGIAdapter):
    """The real agent, except for the calls a test gives a canned answer."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.answers: list[tuple[str, re.Pattern[str], int, bytes, str]] = []

    def answer(self, method: str, path: str, status: int, body: Any, *, content_type: str = "application/json"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((method, re.compile(path), status, raw, content_type))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        path = request.url.removeprefix("https://agent.test").split("?", 1)[0]
        for method, pattern, status, raw, content_type in self.answers:
            if request.method == method and pattern.fullmatch(path):
                self.calls.append((method, path))
                response = requests.Response()
                response.request, response.url, response.status_code = request, request.url, status
                response.headers["Content-Type"] = content_type
                response.raw = io.BytesIO(raw)
                return response
        return super().send(request, **kwargs)


@pytest.fixture
def hostile(agent_service_app) -> HostileAgent:
    return HostileAgent(agent_service_app)


@pytest.fixture
def visitor(database, intake_db, hostile) -> Visitor:
    visitor = Visitor(build_intake_app(database, intake_db, hostile))
    assert visitor.signup(new_email(), PASSWORD).status_code == 303
    return visitor


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def assert_clear(response, status: int, said: str) -> None:
    body = text_of(response)
    assert response.status_code == status, body[:500]
    assert said in body
    assert CANARY not in body


def assert_nothing_logged(caplog) -> None:
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert CANARY not in logged


HOSTILE_RUN_ANSWERS = [
    pytest.param(500, f"<html><pre>Traceback: {CANARY}</pre></html>".encode(), id="500 html traceback"),
    pytest.param(409, {"error": "automation_paused", "message": CANARY * 2000}, id="409 huge message"),
    pytest.param(409, {"error": f"<b>{CANARY}</b>", "message": "x"}, id="409 name not an identifier"),
    pytest.param(418, {"error": "teapot", "message": CANARY}, id="unexpected status"),
    pytest.param(202, f"queued {CANARY}".encode(), id="202 not json"),
    pytest.param(202, {"run_id": CANARY}, id="202 run id not an id"),
]


@pytest.mark.parametrize(("status", "body"), HOSTILE_RUN_ANSWERS)
def test_run_now_with_a_hostile_agent_answer_says_nothing_started_and_echoes_nothing(
        visitor, owner_conn, hostile, caplog, status, body):
    caplog.set_level(logging.DEBUG)
    automation_id = save_digest(visitor, owner_conn)
    hostile.answer("POST", r"/v1/clients/[^/]+/automations/[^/]+/runs", status, body)
    page = f"/automations/{automation_id}"
    assert_clear(visitor.post(f"{page}/run", token_from=page), 503, AGENT_UNREACHABLE)
    assert_nothing_logged(caplog)


@pytest.mark.parametrize(("status", "body"), HOSTILE_RUN_ANSWERS)
def test_a_webhook_call_with_a_hostile_agent_answer_gets_the_json_unavailable_error(
        visitor, owner_conn, hostile, status, body):
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    secret = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    assert visitor.post(f"{page}/enable", token_from=page).status_code == 303
    hostile.answer("POST", r"/v1/clients/[^/]+/automations/[^/]+/runs", status, body)
    response = hook(visitor.app, f"/hooks/{secret}")
    assert response.status_code == 503
    assert response.get_json() == {"error": "unavailable",
                                   "message": "The run could not be started; try again shortly."}


@pytest.mark.parametrize(("status", "body"), [
    pytest.param(502, {"error": "model_error", "message": CANARY * 2000}, id="model error with a huge message"),
    pytest.param(502, {"error": "model_error", "message": ["Claude", CANARY]}, id="message not a sentence"),
    pytest.param(502, f"<html>{CANARY}</html>".encode(), id="502 html"),
    pytest.param(500, {"error": "not_found", "message": CANARY}, id="a 5xx the chat does not name"),
    pytest.param(200, {"kind": "proposal", "automation": CANARY}, id="proposal without an automation"),
    pytest.param(200, {"kind": "sonnet", "text": CANARY}, id="neither question nor proposal"),
    pytest.param(200, b'{"kind": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="nested past the parser's depth"),
    pytest.param(200, b'{"kind": "question", "text": "' + CANARY.encode() * 50_000 + b'"}', id="over a MiB"),
])
def test_a_chat_reply_with_a_hostile_agent_answer_keeps_the_message_and_echoes_nothing(
        visitor, owner_conn, hostile, caplog, status, body):
    caplog.set_level(logging.DEBUG)
    hostile.answer("POST", r"/v1/clients/[^/]+/chat/[^/]+/replies", status, body)
    response = visitor.post("/chat/new", {"message": "Summarise my support emails"})
    assert_clear(response, 503, "Hapex's chat service could not be reached. Your message is saved")
    assert "Summarise my support emails" in text_of(response)
    assert owner_conn.execute("SELECT role FROM chat_messages").fetchall() == [("client",)]
    assert_nothing_logged(caplog)


def test_a_chat_model_error_shows_the_agents_own_short_sentence(visitor, hostile):
    hostile.answer("POST", r"/v1/clients/[^/]+/chat/[^/]+/replies", 502,
                   {"error": "model_error", "message": "Claude is busy right now. Your message is saved."})
    response = visitor.post("/chat/new", {"message": "Summarise my support emails"})
    assert response.status_code == 502
    assert "Claude is busy right now. Your message is saved." in text_of(response)


@pytest.mark.parametrize("body", [
    pytest.param({"run_id": "x", "outputs": [{"step_index": "0; DROP TABLE", "output": CANARY}]}, id="index a string"),
    pytest.param({"outputs": CANARY}, id="outputs a string"),
    pytest.param(f"<html>{CANARY}</html>".encode(), id="html"),
])
def test_the_run_page_says_outputs_could_not_be_loaded_when_the_agents_answer_is_malformed(
        visitor, owner_conn, hostile, caplog, body):
    caplog.set_level(logging.DEBUG)
    automation_id = save_digest(visitor, owner_conn, store_outputs="on")
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/run", token_from=page).status_code == 303
    run_id = owner_conn.execute("SELECT run_id FROM runs").fetchone()[0]
    hostile.answer("GET", r"/v1/clients/[^/]+/runs/[^/]+/outputs", 200, body)
    assert_clear(visitor.get(f"/runs/{run_id}"), 200, "The stored outputs could not be loaded right now.")
    assert_nothing_logged(caplog)


@pytest.mark.parametrize("body", [
    pytest.param({"outputs": [{"output": CANARY}], "next": {"after_run": CANARY, "after_step": 0}}, id="bad cursor"),
    pytest.param({"outputs": [CANARY], "next": None}, id="item not an object"),
    pytest.param({"outputs": []}, id="no next"),
])
def test_no_export_is_made_when_the_agents_outputs_page_is_malformed(visitor, owner_conn, hostile, body):
    save_digest(visitor, owner_conn, store_outputs="on")
    hostile.answer("GET", r"/v1/clients/[^/]+/outputs", 200, body)
    assert_clear(visitor.get("/account/export"), 503, "Your stored step outputs could not be read just now")


@pytest.mark.parametrize("body", [
    pytest.param({"connection": {"connection_id": CANARY}}, id="connection id not an id"),
    pytest.param({"connection": CANARY}, id="connection a string"),
    pytest.param(f"stored {CANARY}".encode(), id="not json"),
])
def test_an_api_key_the_agent_answers_badly_for_is_a_clear_page_not_a_500(visitor, hostile, body):
    hostile.answer("POST", r"/v1/clients/[^/]+/connections/api-key", 201, body)
    response = visitor.post("/connections/api-key", {"provider": "webhook", "api_key": "whsec_" + "k" * 30},
                            token_from="/connections")
    assert_clear(response, 503, "We could not reach the service that holds your connections")


def test_an_api_key_the_agent_refuses_with_a_huge_message_is_not_echoed(visitor, hostile):
    hostile.answer("POST", r"/v1/clients/[^/]+/connections/api-key", 400,
                   {"error": "validation_failed", "message": CANARY})
    response = visitor.post("/connections/api-key", {"provider": "webhook", "api_key": "whsec_" + "k" * 30},
                            token_from="/connections")
    assert_clear(response, 400, "That key could not be stored; nothing was saved.")


def test_account_deletion_waits_when_the_agent_answers_revocation_badly(visitor, owner_conn, hostile):
    hostile.answer("DELETE", r"/v1/clients/[^/]+/connections", 200, {"connections_revoked": CANARY})
    response = visitor.delete_account(PASSWORD)
    assert response.status_code == 503
    assert CANARY not in text_of(response)
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (1,)


@pytest.mark.parametrize(("status", "body"), [(200, f"<html>{CANARY}</html>".encode()),
                                              (302, b""), (404, {"error": "not_found", "message": CANARY})])
def test_the_intake_is_not_ready_when_the_agents_healthz_answers_badly(database, intake_db, hostile, status, body):
    hostile.answer("GET", "/healthz", status, body)
    response = Visitor(build_intake_app(database, intake_db, hostile)).get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["agent"] == "unreachable"
    assert CANARY not in response.get_data(as_text=True)


def test_a_disconnect_the_agent_answers_with_html_for_is_a_clear_page(visitor, owner_conn, hostile, agent_db):
    from tests.factories import make_connection

    client_id = owner_conn.execute("SELECT client_id FROM clients").fetchone()[0]
    connection_id = make_connection(agent_db, client_id, provider="google")
    hostile.answer("DELETE", r"/v1/clients/[^/]+/connections/[^/]+", 500, f"<h1>{CANARY}</h1>".encode(),
                   content_type="text/html")
    page = f"/connections/{connection_id}"
    response = visitor.post(f"{page}/disconnect", {"confirm": "y"}, token_from=page)
    assert_clear(response, 503, "We could not reach the service that holds your connections, so nothing was changed")


def test_a_disconnect_the_agent_answers_not_found_for_is_a_404_without_the_agents_text(
        visitor, owner_conn, hostile, agent_db):
    from tests.factories import make_connection

    client_id = owner_conn.execute("SELECT client_id FROM clients").fetchone()[0]
    connection_id = make_connection(agent_db, client_id, provider="google")
    hostile.answer("DELETE", r"/v1/clients/[^/]+/connections/[^/]+", 404, {"error": "not_found", "message": CANARY})
    page = f"/connections/{connection_id}"
    response = visitor.post(f"{page}/disconnect", {"confirm": "y"}, token_from=page)
    assert response.status_code == 404
    assert CANARY not in text_of(response)
