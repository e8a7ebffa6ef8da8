"""The intake's agent client against a fake agent: what each call sends, what each answer becomes.

The fake is `responses`; the integration tests run the same calls against the real agent app.
An answer is the typed result, AgentRefused (the agent's error shape on a 4xx) or
AgentUnavailable (everything else), whatever a broken or hostile agent sends.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests
import responses

from intake import agent_client
from intake.agent_client import (
    CHAT_REPLY_TIMEOUT,
    TIMEOUT,
    AgentClient,
    AgentRefused,
    AgentUnavailable,
    ChatProposal,
    ChatQuestion,
    ChatStatus,
    Connected,
    ConnectionsRevoked,
    Disconnected,
    OutputsCursor,
    Readiness,
    StartedRun,
    StoredKey,
)
from intake.config import IntakeConfig
from shared.errors import HapexError
from shared.secret import Secret

AGENT = "https://agent.test"
CA_FILE = "/etc/hapex/agent-ca.pem"
TOKEN = "service-token-" + "t" * 32
CLIENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
CANARY = "CANARY-AGENT-BODY-7f3a"


@pytest.fixture
def agent() -> AgentClient:
    return AgentClient(IntakeConfig(database_url="postgresql://hapex_intake@localhost/hapex",
                                    session_secret=Secret("s" * 43), agent_service_url=AGENT,
                                    agent_service_ca=CA_FILE, agent_service_token=Secret(TOKEN)))


@pytest.fixture
def fake() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def sent(fake: responses.RequestsMock, index: int = 0) -> requests.PreparedRequest:
    return fake.calls[index].request


def sent_json(fake: responses.RequestsMock) -> dict:
    return json.loads(sent(fake).body)


def refusal(name: str, message: str = "Refused.") -> dict[str, str]:
    return {"error": name, "message": message}


# --- what each call sends and what it returns ---------------------------------------------


def test_every_call_carries_the_bearer_token_our_ca_no_redirects_and_no_environment_proxy(
        agent, fake, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/somewhere/else.pem")
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", json={"available": True, "over_budget": False})
    agent.chat_status(CLIENT)
    request = sent(fake)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    kwargs = request.req_kwargs
    assert kwargs["verify"] == CA_FILE
    assert kwargs["timeout"] == TIMEOUT
    assert not kwargs["proxies"]
    assert agent.session.trust_env is False


def test_a_redirect_to_the_agents_own_host_is_not_followed_so_the_token_goes_nowhere_else(agent, fake, monkeypatch):
    """requests keeps Authorization on a same-host redirect; only allow_redirects=False stops it."""
    elsewhere = fake.get(f"{AGENT}/elsewhere", json={"available": True, "over_budget": False})
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", status=302, headers={"Location": f"{AGENT}/elsewhere"})
    fake.assert_all_requests_are_fired = False
    asked: list[dict] = []
    request = agent.session.request
    monkeypatch.setattr(agent.session, "request", lambda *a, **kw: asked.append(kw) or request(*a, **kw))
    with pytest.raises(AgentUnavailable):
        agent.chat_status(CLIENT)
    assert elsewhere.call_count == 0
    assert len(fake.calls) == 1
    assert [kwargs["allow_redirects"] for kwargs in asked] == [False]


def test_an_agent_url_that_is_not_https_is_refused_at_start():
    with pytest.raises(ValueError, match="https"):
        AgentClient(IntakeConfig(database_url="x", session_secret=Secret("s" * 43),
                                 agent_service_url="http://agent.test", agent_service_ca=None,
                                 agent_service_token=Secret(TOKEN)))


def test_exchange_code_forwards_code_and_verifier_and_returns_the_connection(agent, fake):
    connection_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/connections/oauth", status=201,
              json={"connection": {"connection_id": str(connection_id)}, "missing_scopes": ["scope.b"]})
    connected = agent.exchange_code(CLIENT, provider="google", code=Secret("the-code"),
                                    code_verifier=Secret("the-verifier"), redirect_uri="https://app.test/cb",
                                    requested_scopes=("scope.a", "scope.b"), connection_id=OTHER)
    assert connected == Connected(connection_id=connection_id, missing_scopes=("scope.b",))
    assert sent_json(fake) == {"provider": "google", "code": "the-code", "code_verifier": "the-verifier",
                               "redirect_uri": "https://app.test/cb", "requested_scopes": ["scope.a", "scope.b"],
                               "connection_id": str(OTHER)}


def test_exchange_code_without_a_connection_to_renew_sends_none(agent, fake):
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/connections/oauth", status=201,
              json={"connection": {"connection_id": str(uuid.uuid4())}, "missing_scopes": []})
    agent.exchange_code(CLIENT, provider="google", code=Secret("c"), code_verifier=Secret("v"),
                        redirect_uri="https://app.test/cb", requested_scopes=(), connection_id=None)
    assert "connection_id" not in sent_json(fake)


def test_store_api_key_passes_the_key_through_and_returns_its_hint_only(agent, fake):
    connection_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/connections/api-key", status=201,
              json={"connection": {"connection_id": str(connection_id), "secret_hint": "Zq9w"}})
    stored = agent.store_api_key(CLIENT, provider="webhook", api_key=Secret("whsec_abcdefZq9w"), label=None)
    assert stored == StoredKey(connection_id=connection_id, secret_hint="Zq9w")
    assert sent_json(fake) == {"provider": "webhook", "api_key": "whsec_abcdefZq9w"}


def test_a_secret_hint_longer_than_four_characters_is_clipped_to_the_last_four(agent, fake):
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/connections/api-key", status=201,
              json={"connection": {"connection_id": str(uuid.uuid4()), "secret_hint": f"{CANARY}Zq9w"}})
    stored = agent.store_api_key(CLIENT, provider="webhook", api_key=Secret("whsec_abcdefZq9w"), label=None)
    assert stored.secret_hint == "Zq9w"


def test_disconnect_and_revoking_everything_use_delete(agent, fake):
    connection_id = uuid.uuid4()
    fake.delete(f"{AGENT}/v1/clients/{CLIENT}/connections/{connection_id}",
                json={"connection_id": str(connection_id), "revocation": "revoked"})
    fake.delete(f"{AGENT}/v1/clients/{CLIENT}/connections", json={"connections_revoked": 2, "credentials_deleted": 3})
    assert agent.disconnect(CLIENT, connection_id) == Disconnected(revocation="revoked")
    assert agent.revoke_all_connections(CLIENT) == ConnectionsRevoked(connections_revoked=2, credentials_deleted=3)


def test_start_run_names_its_trigger_and_returns_the_queued_run(agent, fake):
    automation_id, run_id = uuid.uuid4(), uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/automations/{automation_id}/runs", status=202,
              json={"run_id": str(run_id), "status": "queued"})
    assert agent.start_run(CLIENT, automation_id, trigger="webhook") == StartedRun(run_id=run_id, status="queued")
    assert sent_json(fake) == {"trigger": "webhook"}


def test_run_outputs_are_typed_by_step_and_never_shown_in_a_repr(agent, fake):
    run_id = uuid.uuid4()
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/runs/{run_id}/outputs",
             json={"run_id": str(run_id), "outputs": [
                 {"step_index": 0, "capability": "gmail.search", "output": {"subject": CANARY}},
                 {"step_index": 1, "capability": "llm.summarise", "output": None, "unreadable": True}]})
    first, second = agent.run_outputs(CLIENT, run_id)
    assert (first.step_index, first.output, first.unreadable) == (0, {"subject": CANARY}, False)
    assert (second.step_index, second.unreadable) == (1, True)
    assert CANARY not in repr(first)


def test_client_outputs_are_paged_with_the_cursor_the_agent_gave(agent, fake):
    after_run = uuid.uuid4()
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/outputs", match=[responses.matchers.query_param_matcher({"limit": "2"})],
             json={"outputs": [{"step_index": 0, "output": {"x": CANARY}}, {"step_index": 1, "output": 2}],
                   "next": {"after_run": str(after_run), "after_step": 1}})
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/outputs",
             match=[responses.matchers.query_param_matcher(
                 {"limit": "2", "after_run": str(after_run), "after_step": "1"})],
             json={"outputs": [], "next": None})
    page = agent.client_outputs(CLIENT, after=None, limit=2)
    assert page.next == OutputsCursor(after_run=after_run, after_step=1)
    assert page.outputs[0] == {"step_index": 0, "output": {"x": CANARY}}
    assert CANARY not in repr(page)
    assert agent.client_outputs(CLIENT, after=page.next, limit=2).next is None


def test_an_answer_that_declares_no_length_is_read_no_further_than_the_cap(agent, fake):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat",
             json={"available": True, "over_budget": False, "x": "x" * agent_client.MAX_BODY_BYTES})
    with pytest.raises(AgentUnavailable):
        agent.chat_status(CLIENT)


def test_an_outputs_page_may_be_larger_than_other_answers(agent, fake):
    big = "x" * (2 * agent_client.MAX_BODY_BYTES)
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/outputs", json={"outputs": [{"step_index": 0, "output": big}], "next": None})
    assert agent.client_outputs(CLIENT, after=None, limit=1).outputs[0]["output"] == big


def test_chat_status_reads_only_true_as_true(agent, fake):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", json={"available": "yes", "over_budget": True})
    assert agent.chat_status(CLIENT) == ChatStatus(available=False, over_budget=True)


def test_the_chat_reply_waits_longer_and_returns_a_question_or_a_proposal(agent, fake):
    draft_id = uuid.uuid4()
    url = f"{AGENT}/v1/clients/{CLIENT}/chat/{draft_id}/replies"
    fake.post(url, json={"kind": "question", "text": "Which channel?", "prompt_version": "v3"})
    fake.post(url, json={"kind": "proposal", "automation": {"name": CANARY}, "message": "Here it is.",
                         "summary_in_plain_words": "Posts a digest.", "prompt_version": "v3"})
    assert agent.chat_reply(CLIENT, draft_id) == ChatQuestion(text="Which channel?", prompt_version="v3")
    assert sent(fake).req_kwargs["timeout"] == CHAT_REPLY_TIMEOUT
    assert sent(fake).headers["Authorization"] == f"Bearer {TOKEN}"
    proposal = agent.chat_reply(CLIENT, draft_id)
    assert isinstance(proposal, ChatProposal)
    assert (proposal.automation, proposal.message, proposal.summary) == ({"name": CANARY}, "Here it is.",
                                                                         "Posts a digest.")
    assert CANARY not in repr(proposal)


def test_liveness_and_readiness_are_the_agents_healthz_and_readyz(agent, fake):
    fake.get(f"{AGENT}/healthz", json={"status": "ok"})
    fake.get(f"{AGENT}/readyz", json={"status": "ok", "database": "ok", "credential_keys": "ok"})
    fake.get(f"{AGENT}/readyz", status=503,
             json={"status": "unavailable", "database": "ok", "credential_keys": "missing", "other": CANARY})
    agent.check_alive()
    assert agent.check_ready() == Readiness(ready=True)
    assert agent.check_ready() == Readiness(ready=False, failed=("credential_keys",))


@pytest.mark.parametrize("answer", [
    pytest.param({"status": 503, "json": refusal("unavailable", CANARY)}, id="503 in the error shape"),
    pytest.param({"status": 503, "json": {"status": "ok"}}, id="503 that says ok"),
    pytest.param({"status": 200, "json": {"status": "unavailable"}}, id="200 that says unavailable"),
    pytest.param({"status": 502, "json": {"status": "unavailable"}}, id="502 with a readiness body"),
    pytest.param({"status": 503, "body": f"<html>{CANARY}</html>"}, id="503 html"),
])
def test_a_readyz_answer_that_is_not_a_readiness_is_agent_unavailable(agent, fake, answer):
    fake.get(f"{AGENT}/readyz", **answer)
    with pytest.raises(AgentUnavailable):
        agent.check_ready()


# --- refusals: the agent's error shape ------------------------------------------------------


@pytest.mark.parametrize(("status", "name"), [(404, "not_found"), (409, "automation_paused"),
                                              (409, "budget_exhausted"), (400, "validation_failed")])
def test_the_agents_error_shape_on_a_4xx_is_agent_refused_with_its_name_and_sentence(agent, fake, status, name):
    automation_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/automations/{automation_id}/runs", status=status,
              json={"error": name, "message": "A sentence for the client.", "fields": {"x": ["y"]}})
    with pytest.raises(AgentRefused) as refused:
        agent.start_run(CLIENT, automation_id, trigger="manual")
    assert (refused.value.name, refused.value.message, refused.value.status) == (
        name, "A sentence for the client.", status)
    assert "sentence" not in str(refused.value)  # a traceback shows the name, never the agent's text


@pytest.mark.parametrize("name", [agent_client.MODEL_ERROR, agent_client.MODEL_TIMEOUT, agent_client.CHAT_UNAVAILABLE])
def test_the_chats_named_5xx_answers_are_refusals_it_can_explain(agent, fake, name):
    draft_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/chat/{draft_id}/replies", status=502 if name != "chat_unavailable" else 503,
              json=refusal(name, "Claude did not answer in time. Your message is saved."))
    with pytest.raises(AgentRefused) as refused:
        agent.chat_reply(CLIENT, draft_id)
    assert refused.value.name == name


def _own_name(error_class: type[HapexError]) -> str:
    """The error name a class of the agent answers with (its own, or the condition's it refines)."""
    return error_class.name


def test_the_error_names_the_intake_branches_on_are_the_agents():
    """A rename on the agent's side fails here until agent_client's constant (one line) follows it."""
    from agent_service.chat.model import ModelFailed, ModelTimedOut
    from agent_service.chat.service import ChatBudgetExhausted, ChatUnavailable, NothingToAnswer
    from agent_service.connections import views as connection_views
    from agent_service.runs.triggers import AutomationPaused, BudgetExhausted, RunRefused
    from shared.errors import NotFound

    assert agent_client.NOT_FOUND == _own_name(NotFound)
    assert agent_client.CLIENT_NOT_FOUND == _own_name(connection_views.ClientNotFound)
    assert agent_client.PROVIDER_NOT_CONFIGURED == _own_name(connection_views.ProviderNotConfigured)
    assert agent_client.RUN_REFUSALS == {_own_name(RunRefused), _own_name(AutomationPaused),
                                         _own_name(BudgetExhausted)}
    assert agent_client.BUDGET_EXHAUSTED == _own_name(ChatBudgetExhausted)
    assert agent_client.CHAT_UNAVAILABLE == _own_name(ChatUnavailable)
    assert agent_client.NOTHING_TO_ANSWER == _own_name(NothingToAnswer)
    assert agent_client.MODEL_ERROR == _own_name(ModelFailed)
    assert agent_client.MODEL_TIMEOUT == _own_name(ModelTimedOut)


# --- a broken or hostile agent: always AgentUnavailable -----------------------------------


def _run_url(automation_id: uuid.UUID) -> str:
    return f"{AGENT}/v1/clients/{CLIENT}/automations/{automation_id}/runs"


@pytest.mark.parametrize("answer", [
    pytest.param({"status": 500, "json": refusal("internal_error", CANARY)}, id="5xx with the error shape"),
    pytest.param({"status": 503, "json": refusal("provider_unavailable", CANARY)}, id="503 with a name"),
    pytest.param({"status": 502, "body": f"<html>{CANARY}</html>"}, id="5xx html"),
    pytest.param({"status": 409, "body": f"<html>{CANARY}</html>"}, id="4xx html"),
    pytest.param({"status": 409, "json": ["automation_paused", CANARY]}, id="4xx json not an object"),
    pytest.param({"status": 409, "json": {"message": CANARY}}, id="4xx without a name"),
    pytest.param({"status": 409, "json": refusal("<script>alert(1)</script>", CANARY)}, id="name not an identifier"),
    pytest.param({"status": 409, "json": refusal("automation_paused", CANARY * 1000)}, id="huge message"),
    pytest.param({"status": 409, "json": {"error": "automation_paused", "message": {"html": CANARY}}},
                 id="message not a sentence"),
    pytest.param({"status": 401, "json": refusal("unauthorized", CANARY)}, id="our token refused 401"),
    pytest.param({"status": 403, "json": refusal("forbidden", CANARY)}, id="our token refused 403"),
    pytest.param({"status": 302, "headers": {"Location": "https://elsewhere.test/"}}, id="redirect"),
    pytest.param({"status": 200, "json": {"run_id": str(uuid.uuid4()), "status": "queued"}}, id="200 for a 202"),
    pytest.param({"status": 202, "body": f"queued {CANARY}"}, id="202 not json"),
    pytest.param({"status": 202, "json": {"run_id": CANARY, "status": "queued"}}, id="202 run id not a uuid"),
    pytest.param({"status": 202, "json": {"run_id": 7, "status": "queued"}}, id="202 run id a number"),
    pytest.param({"status": 202, "json": {"status": "queued"}}, id="202 without run id"),
    pytest.param({"status": 202, "json": [CANARY]}, id="202 a list"),
    pytest.param({"status": 202, "body": "[" * 100_000 + "]" * 100_000}, id="nested past the parser's depth"),
    pytest.param({"status": 409, "body": '{"error": ' + "[" * 100_000 + "]" * 100_000 + "}"},
                 id="4xx nested past the parser's depth"),
    pytest.param({"status": 202, "json": {"run_id": str(uuid.uuid4()), "status": "queued", "x": CANARY * 60_000}},
                 id="over a MiB"),
    pytest.param({"body": requests.exceptions.ConnectionError(CANARY)}, id="unreachable"),
    pytest.param({"body": requests.exceptions.ReadTimeout(CANARY)}, id="timeout"),
    pytest.param({"body": requests.exceptions.SSLError(CANARY)}, id="certificate not ours"),
])
def test_anything_but_the_promised_answer_or_the_error_shape_is_agent_unavailable_and_logs_no_body(
        agent, fake, caplog, answer):
    caplog.set_level(logging.DEBUG)
    automation_id = uuid.uuid4()
    fake.post(_run_url(automation_id), **answer)
    with pytest.raises(AgentUnavailable) as unavailable:
        agent.start_run(CLIENT, automation_id, trigger="manual")
    assert CANARY not in str(unavailable.value)
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert logged and CANARY not in logged and TOKEN not in logged


def test_a_client_the_agent_does_not_know_is_agent_unavailable_not_a_refusal_to_explain(agent, fake, caplog):
    """The intake and the agent disagree about who exists: a deployment fault, not the client's doing."""
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/connections/api-key", status=404,
              json=refusal("client_not_found", "No such client."))
    with pytest.raises(AgentUnavailable):
        agent.store_api_key(CLIENT, provider="webhook", api_key=Secret("whsec_abcdefZq9w"), label=None)
    assert any(record.levelno == logging.ERROR and "client" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("name", ["not_found", "internal_error"])
def test_a_5xx_the_chat_does_not_name_is_agent_unavailable(agent, fake, name):
    draft_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/chat/{draft_id}/replies", status=502, json=refusal(name, CANARY))
    with pytest.raises(AgentUnavailable):
        agent.chat_reply(CLIENT, draft_id)


@pytest.mark.parametrize("body", [
    {"kind": "poem", "text": CANARY},
    {"kind": "proposal", "automation": CANARY, "message": "m"},
    {"kind": "proposal", "message": "m"},
    {"kind": "question", "text": {"html": CANARY}},
])
def test_a_chat_reply_of_the_wrong_shape_is_agent_unavailable(agent, fake, body):
    draft_id = uuid.uuid4()
    fake.post(f"{AGENT}/v1/clients/{CLIENT}/chat/{draft_id}/replies", json=body)
    with pytest.raises(AgentUnavailable):
        agent.chat_reply(CLIENT, draft_id)


@pytest.mark.parametrize("body", [
    {"outputs": CANARY, "next": None},
    {"outputs": [CANARY], "next": None},
    {"outputs": [], "next": {"after_run": CANARY, "after_step": 1}},
    {"outputs": [], "next": {"after_run": str(uuid.uuid4()), "after_step": True}},
    {"outputs": []},
])
def test_an_outputs_page_of_the_wrong_shape_is_agent_unavailable(agent, fake, body):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/outputs", json=body)
    with pytest.raises(AgentUnavailable):
        agent.client_outputs(CLIENT, after=None, limit=500)


@pytest.mark.parametrize("item", [
    {"step_index": "0", "output": CANARY},
    {"step_index": True, "output": CANARY},
    {"output": CANARY},
    CANARY,
])
def test_run_outputs_of_the_wrong_shape_are_agent_unavailable(agent, fake, item):
    run_id = uuid.uuid4()
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/runs/{run_id}/outputs", json={"outputs": [item]})
    with pytest.raises(AgentUnavailable):
        agent.run_outputs(CLIENT, run_id)


def test_a_revoked_token_is_logged_as_a_configuration_problem(agent, fake, caplog):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", status=403, json=refusal("forbidden", "No."))
    with pytest.raises(AgentUnavailable):
        agent.chat_status(CLIENT)
    assert any(record.levelno == logging.ERROR and "service token" in record.getMessage()
               for record in caplog.records)


# --- the client's own proof ----------------------------------------------------------------


@pytest.fixture
def request_context():
    """A Flask app context, as a view's agent calls have; its g holds the request's proof."""
    import flask

    with flask.Flask(__name__).app_context():
        yield


def test_a_call_carries_the_proof_of_the_request_being_served(agent, fake, request_context):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", json={"available": True, "over_budget": False})
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", json={"available": True, "over_budget": False})
    agent_client.use_proof(agent_client.ClientProof.session(CLIENT, "c" * 43))
    agent.chat_status(CLIENT)
    with agent_client.acting_for(agent_client.ClientProof.webhook(CLIENT, "w" * 43)):
        agent.chat_status(CLIENT)
    assert sent(fake, 0).headers[agent_client.PROOF_HEADER] == "session " + "c" * 43
    assert sent(fake, 1).headers[agent_client.PROOF_HEADER] == "webhook " + "w" * 43
    assert agent_client.current_proof() == agent_client.ClientProof.session(CLIENT, "c" * 43)


def test_a_proof_never_shows_its_secret_in_a_repr(request_context):
    proof = agent_client.ClientProof.session(CLIENT, CANARY)
    assert CANARY not in repr(proof) and CANARY not in str(proof)


def test_without_a_request_or_a_proof_a_call_carries_none(agent, fake, request_context):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", json={"available": True, "over_budget": False})
    agent.chat_status(CLIENT)
    assert agent_client.PROOF_HEADER not in sent(fake).headers


@pytest.mark.parametrize("status,name", [(401, "client_proof_required"), (403, "client_proof_refused")])
def test_a_refused_proof_is_its_own_error_not_the_agent_being_down(agent, fake, caplog, status, name):
    fake.get(f"{AGENT}/v1/clients/{CLIENT}/chat", status=status, json=refusal(name, CANARY))
    with pytest.raises(agent_client.ClientProofRefused) as raised:
        agent.chat_status(CLIENT)
    assert raised.value.name == name
    assert not isinstance(raised.value, agent_client.AgentError)  # "try again later" handlers do not catch it
    assert CANARY not in caplog.text


def test_the_proof_refusal_names_are_the_agents():
    from agent_service.auth import PROOF_HEADER, ClientProofRefused, ClientProofRequired

    assert agent_client.CLIENT_PROOF_REFUSALS == {_own_name(ClientProofRefused), _own_name(ClientProofRequired)}
    assert agent_client.PROOF_HEADER == PROOF_HEADER
