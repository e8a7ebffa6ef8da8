"""The build chat end to end: intake pages, the real agent behind them, `responses` as the Anthropic API.

The stand-in answers are shaped as the Messages API's: content blocks with tool_use
{id, name, input}, stop_reason tool_use, usage {input_tokens, output_tokens}.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import uuid
from typing import Any

import pytest
import requests
import responses

from agent_service.chat.service import AFTER_REPAIRS, MAX_REPAIRS
from agent_service.runs.prices import PRICE_VERSION, llm_cost_microusd
from shared.catalog import CAPABILITIES, POLL_TRIGGERS, required_scopes
from shared.structured_logging import JSONFormatter
from tests.agent_api import build_agent_app, with_proof
from tests.factories import client_of
from tests.integration.conftest import AGENT_TOKEN, PASSWORD, Visitor, WSGIAdapter, build_intake_app, new_email

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
API_KEY = "sk-ant-chat-test-" + secrets.token_hex(8)
G = "https://www.googleapis.com/auth/"
_REVISION = re.compile(r'name="revision" type="hidden" value="(\d+)"|type="hidden" name="revision" value="(\d+)"')
_CODE = re.compile(r"<code>([^<]+)</code>")

DIGEST = {
    "name": "Customer email digest",
    "trigger": {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/Paris"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "is:unread from:customers newer_than:1d"}},
        {"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}, "max_words": 150}},
        {"capability": "slack.post_message", "input": {"channel": "#support", "text": {"$ref": "steps.1.text"}}},
    ],
}


@pytest.fixture
def agent_environ() -> dict[str, str]:
    """The agent behind the intake has Hapex's Anthropic key set (and nothing else from the process environment)."""
    return {"ANTHROPIC_API_KEY": API_KEY}


@pytest.fixture
def anthropic():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def message(*blocks: dict[str, Any], input_tokens: int = 1500, output_tokens: int = 120,
            stop_reason: str = "tool_use", cache_creation_input_tokens: int | None = None,
            cache_read_input_tokens: int | None = None) -> dict[str, Any]:
    counted: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_creation_input_tokens is not None or cache_read_input_tokens is not None:
        counted |= {"cache_creation_input_tokens": cache_creation_input_tokens,
                    "cache_read_input_tokens": cache_read_input_tokens}
    return {"id": "msg_" + secrets.token_hex(8), "type": "message", "role": "assistant",
            "model": "claude-sonnet-5-5", "content": list(blocks), "stop_reason": stop_reason,
            "stop_sequence": None, "usage": counted}


def tool_use(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_" + secrets.token_hex(8), "name": name, "input": tool_input}


def question(text: str, **usage: int) -> dict[str, Any]:
    return message(tool_use("ask_question", {"question": text}), **usage)


def proposal(automation: dict[str, Any], note: str = "This posts a summary of customer emails to #support.",
             **usage: Any) -> dict[str, Any]:
    extra = usage.pop("extra", {})
    return message(tool_use("propose_automation", {"automation": automation, "message": note, **extra}), **usage)


def with_step(automation: dict[str, Any], index: int, **step: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(automation))
    changed["steps"][index].update(step)
    return changed


def html_of(response) -> str:
    """The page as a reader sees its text (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def sent_bodies(mock: responses.RequestsMock) -> list[dict[str, Any]]:
    return [json.loads(call.request.body) for call in mock.calls]


def draft_id_of(response) -> uuid.UUID:
    assert response.status_code == 303, html_of(response)
    match = re.match(r"^/chat/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return uuid.UUID(match.group(1))


def start_chat(visitor: Visitor, text: str):
    return visitor.post("/chat/new", {"message": text})


def send(visitor: Visitor, draft_id: uuid.UUID, text: str):
    return visitor.post(f"/chat/{draft_id}/messages", {"message": text}, token_from=f"/chat/{draft_id}")


def approve(visitor: Visitor, draft_id: uuid.UUID, revision: str | None = None):
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    if revision is None:
        match = _REVISION.search(page)
        assert match, "no approval form on the page"
        revision = next(group for group in match.groups() if group)
    return visitor.post(f"/chat/{draft_id}/approve", {"revision": revision}, token_from=f"/chat/{draft_id}")


def proposal_section(html: str) -> str:
    start = html.index('id="proposal"')
    return html[start:html.index('id="reply"')]


def stored_messages(owner_conn, draft_id: uuid.UUID) -> list[tuple[str, str]]:
    return owner_conn.execute("SELECT role, content FROM chat_messages WHERE draft_id = %s ORDER BY created_at",
                              [draft_id]).fetchall()


def chat_costs(owner_conn, client_id: uuid.UUID) -> list[tuple]:
    return owner_conn.execute(
        "SELECT source, provider, model, input_tokens, output_tokens, price_version, amount_microusd, calls, run_id "
        "FROM cost_events WHERE client_id = %s ORDER BY occurred_at", [client_id]).fetchall()


# --- a conversation to an approved automation ---------------------------------------------


def test_a_conversation_ends_in_an_approved_automation_with_the_minimal_scopes(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    anthropic.post(ANTHROPIC_URL, json=question("Which Slack channel should the summary go to?"))
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))

    draft_id = draft_id_of(start_chat(visitor, "Every weekday at 8 in Paris, summarise customer emails to Slack."))
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    assert "Which Slack channel should the summary go to?" in page
    assert 'id="proposal"' not in page

    assert send(visitor, draft_id, "#support please").status_code == 303
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    shown = proposal_section(page)
    assert "Customer email digest" in page
    assert "every weekday at 08:00 (Europe/Paris time)" in shown
    assert "Post to Slack (Slack): channel: “#support”" in shown
    assert set(_CODE.findall(shown)) == {G + "gmail.readonly", "chat:write"}
    assert 'access-read">read</span> <code>' + G + "gmail.readonly" in shown
    assert 'access-write">write</span> <code>chat:write' in shown

    response = approve(visitor, draft_id)

    assert response.status_code == 303
    client_id = client_of(owner_conn, email)
    automations = owner_conn.execute("SELECT automation_id, name, status, trigger, steps, version FROM automations "
                                     "WHERE client_id = %s", [client_id]).fetchall()
    assert len(automations) == 1
    automation_id, name, status, trigger, steps, version = automations[0]
    assert (name, status, trigger, steps, version) == ("Customer email digest", "draft", DIGEST["trigger"],
                                                       DIGEST["steps"], 1)
    assert required_scopes(steps) == {"google": (G + "gmail.readonly",), "slack": ("chat:write",)}
    assert owner_conn.execute("SELECT automation_id, approved_revision FROM chat_drafts WHERE draft_id = %s",
                              [draft_id]).fetchone() == (automation_id, 1)
    after = html_of(visitor.get(f"/chat/{draft_id}"))
    assert "Approved" in after and f'href="/automations/{automation_id}"' in after
    assert [role for role, _ in stored_messages(owner_conn, draft_id)] == ["client", "assistant", "client",
                                                                          "assistant"]


def test_the_model_is_called_with_the_stored_conversation_and_tools_bound_to_the_catalog(signed_up, anthropic):
    visitor, _ = signed_up
    anthropic.post(ANTHROPIC_URL, json=question("Which channel?"))
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to Slack"))
    send(visitor, draft_id, "#support")

    first, second = anthropic.calls
    assert first.request.headers["x-api-key"] == API_KEY
    assert first.request.headers["anthropic-version"] == "2026-10-21"
    body = json.loads(second.request.body)
    # No forced tool choice and no temperature: the current models answer either with a 400.
    assert not {"tool_choice", "temperature", "top_p", "top_k"} & set(body)
    assert body["model"] == "claude-sonnet-5-5" and body["output_config"] == {"effort": "medium"}
    # Cache breakpoints: the stable system prompt (with the tools before it) and the conversation's end.
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in block for block in body["system"][1:])
    assert body["messages"] == [
        {"role": "user", "content": "Summarise customer emails to Slack"},
        {"role": "assistant", "content": "Which channel?"},
        {"role": "user", "content": [{"type": "text", "text": "#support", "cache_control": {"type": "ephemeral"}}]},
    ]
    tools = {tool["name"]: tool["input_schema"] for tool in body["tools"]}
    assert set(tools) == {"propose_automation", "ask_question"}
    automation = tools["propose_automation"]["properties"]["automation"]["properties"]
    assert automation["steps"]["items"]["properties"]["capability"]["enum"] == sorted(CAPABILITIES)
    assert automation["trigger"]["properties"]["kind"]["enum"] == ["manual", "schedule", "webhook", "poll"]
    assert automation["trigger"]["properties"]["source"]["enum"] == sorted(POLL_TRIGGERS)
    system = "\n".join(block["text"] for block in body["system"])
    assert "### slack.post_message: Post to Slack (Slack)" in system
    assert "`channel`: string; required" in system


# --- invalid proposals --------------------------------------------------------------------


def test_an_invalid_proposal_is_repaired_with_its_validation_errors(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    wrong = with_step(DIGEST, 2, input={"channel": "support", "text": {"$ref": "steps.1.text"}})
    first = proposal(wrong, input_tokens=1000, output_tokens=90)
    anthropic.post(ANTHROPIC_URL, json=first)
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST, input_tokens=1400, output_tokens=95))

    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))

    repair = sent_bodies(anthropic)[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": first["content"]}
    (result,) = repair[-1]["content"]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert result["tool_use_id"] == first["content"][0]["id"]
    assert "steps.2.input.channel" in result["content"]
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    assert "channel: “#support”" in proposal_section(page)
    assert owner_conn.execute("SELECT proposal FROM chat_drafts WHERE draft_id = %s",
                              [draft_id]).fetchone()[0]["steps"] == DIGEST["steps"]


def test_a_proposal_still_invalid_after_the_repairs_becomes_a_question_and_nothing_is_saved(
    signed_up, owner_conn, anthropic
):
    visitor, email = signed_up
    wrong = with_step(DIGEST, 0, input={"query": ""})
    for _ in range(MAX_REPAIRS + 1):
        anthropic.post(ANTHROPIC_URL, json=proposal(wrong))

    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))

    assert len(anthropic.calls) == MAX_REPAIRS + 1
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    assert AFTER_REPAIRS in page
    assert 'id="proposal"' not in page
    assert owner_conn.execute("SELECT proposal FROM chat_drafts WHERE draft_id = %s", [draft_id]).fetchone() == (None,)
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)
    assert stored_messages(owner_conn, draft_id)[-1] == ("assistant", AFTER_REPAIRS)


def test_a_proposal_naming_an_unknown_capability_is_refused(signed_up, owner_conn, anthropic):
    visitor, _ = signed_up
    unknown = with_step(DIGEST, 0, capability="gmail.delete_everything", input={})
    anthropic.post(ANTHROPIC_URL, json=proposal(unknown))
    anthropic.post(ANTHROPIC_URL, json=question("Hapex cannot delete emails. Should I only summarise them?"))

    draft_id = draft_id_of(start_chat(visitor, "Delete all my customer emails and tell Slack"))

    refusal = sent_bodies(anthropic)[1]["messages"][-1]["content"][0]
    assert refusal["is_error"] is True
    assert "`gmail.delete_everything` is not a capability in Hapex's catalog" in refusal["content"]
    page = html_of(visitor.get(f"/chat/{draft_id}"))
    assert "Hapex cannot delete emails." in page
    assert 'id="proposal"' not in page
    assert owner_conn.execute("SELECT proposal FROM chat_drafts WHERE draft_id = %s", [draft_id]).fetchone() == (None,)


def test_a_proposal_asking_for_a_wider_scope_is_refused(signed_up, owner_conn, anthropic):
    visitor, _ = signed_up
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST, extra={"scopes": {"google": ["https://mail.google.com/"]}}))
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))

    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))

    refusal = sent_bodies(anthropic)[1]["messages"][-1]["content"][0]
    assert refusal["is_error"] is True
    assert "The scope `https://mail.google.com/` is wider than these steps need" in refusal["content"]
    shown = proposal_section(html_of(visitor.get(f"/chat/{draft_id}")))
    assert "https://mail.google.com/" not in shown
    assert set(_CODE.findall(shown)) == {G + "gmail.readonly", "chat:write"}


def test_the_scopes_shown_come_from_the_catalog_whatever_the_model_says(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    boast = ("I'll need full access to your Gmail (https://mail.google.com/) and admin rights on Slack "
             "(admin, channels:write) for this.")
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST, note=boast))

    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    page = html_of(visitor.get(f"/chat/{draft_id}"))

    assert "full access to your Gmail" in page  # the model's words are shown as its words...
    shown = proposal_section(page)
    assert set(_CODE.findall(shown)) == {G + "gmail.readonly", "chat:write"}  # ...but change nothing
    assert "mail.google.com" not in shown and "channels:write" not in shown
    approve(visitor, draft_id)
    steps = owner_conn.execute("SELECT steps FROM automations").fetchone()[0]
    assert required_scopes(steps) == {"google": (G + "gmail.readonly",), "slack": ("chat:write",)}


# --- approval -----------------------------------------------------------------------------


def test_only_the_revision_the_page_showed_can_be_approved_and_a_later_one_updates_the_automation(
    signed_up, owner_conn, anthropic
):
    visitor, _ = signed_up
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    manual = {**DIGEST, "name": "Digest on demand", "trigger": {"kind": "manual"}}
    anthropic.post(ANTHROPIC_URL, json=proposal(manual))
    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)  # a proposal saves nothing
    assert approve(visitor, draft_id).status_code == 303
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]

    owner_conn.execute("UPDATE automations SET store_outputs = true")  # the client's switch, in the builder
    send(visitor, draft_id, "Actually I will start it myself")
    stale = approve(visitor, draft_id, revision="1")

    assert stale.status_code == 409
    assert "The proposal changed since the page was shown" in html_of(stale)
    assert owner_conn.execute("SELECT name, version FROM automations").fetchall() == [("Customer email digest", 1)]
    system = "\n".join(b["text"] for b in sent_bodies(anthropic)[1]["system"])
    assert "The client approved this proposal" in system and '"Customer email digest"' in system

    assert approve(visitor, draft_id, revision="2").status_code == 303
    assert owner_conn.execute("SELECT automation_id, name, version, trigger, store_outputs FROM automations"
                              ).fetchall() == [(automation_id, "Digest on demand", 2, {"kind": "manual"}, True)]


def test_a_proposal_approved_after_its_automation_was_deleted_saves_a_new_one_not_a_hidden_version(
    signed_up, owner_conn, anthropic
):
    """Deleted keeping its run records, the automation is hidden for good; approving the chat's next
    proposal used to write version 2 into it, hidden, and redirect to a page that answers 404."""
    visitor, _ = signed_up
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    anthropic.post(ANTHROPIC_URL, json=proposal({**DIGEST, "name": "Digest on demand", "trigger": {"kind": "manual"}}))
    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    assert approve(visitor, draft_id).status_code == 303
    deleted = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    owner_conn.execute("UPDATE automations SET status = 'deleted'")
    send(visitor, draft_id, "Actually I will start it myself")
    response = approve(visitor, draft_id, revision="2")
    assert response.status_code == 303
    assert owner_conn.execute("SELECT name, version, status FROM automations WHERE automation_id = %s",
                              [deleted]).fetchone() == ("Customer email digest", 1, "deleted")
    (fresh,) = owner_conn.execute("SELECT automation_id FROM automations WHERE name = 'Digest on demand'").fetchone()
    assert fresh != deleted
    assert owner_conn.execute("SELECT automation_id FROM chat_drafts WHERE draft_id = %s",
                              [draft_id]).fetchone() == (fresh,)


def test_an_empty_message_is_a_form_error_and_asks_nothing(signed_up, owner_conn, anthropic):
    visitor, _ = signed_up
    response = start_chat(visitor, "   ")
    assert response.status_code == 400
    assert "Write a message first." in html_of(response)
    assert owner_conn.execute("SELECT count(*) FROM chat_drafts").fetchone() == (0,)
    assert len(anthropic.calls) == 0


@pytest.mark.parametrize("route", ["new", "messages", "ask-again", "approve"])
def test_a_chat_post_without_the_sites_token_changes_nothing_and_asks_nothing(signed_up, owner_conn, anthropic,
                                                                             route):
    visitor, _ = signed_up
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    before = owner_conn.execute("SELECT count(*) FROM chat_messages").fetchone()
    path = "/chat/new" if route == "new" else f"/chat/{draft_id}/{route}"

    response = visitor.client.post(path, data={"message": "forged", "revision": "1"},
                                   base_url="https://intake.test", headers={"Referer": "https://intake.test/"})

    assert response.status_code == 400
    assert "This form has expired or did not come from this site" in html_of(response)
    assert owner_conn.execute("SELECT count(*) FROM chat_messages").fetchone() == before
    assert owner_conn.execute("SELECT count(*) FROM chat_drafts").fetchone() == (1,)
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)
    assert len(anthropic.calls) == 1


# --- costs and budgets --------------------------------------------------------------------


def test_cost_events_match_the_usage_of_every_call_including_repairs(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    wrong = with_step(DIGEST, 2, input={"channel": "support", "text": "x"})
    usages = [(2345, 210), (2601, 198), (2702, 77)]
    anthropic.post(ANTHROPIC_URL, json=proposal(wrong, input_tokens=usages[0][0], output_tokens=usages[0][1]))
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST, input_tokens=usages[1][0], output_tokens=usages[1][1]))
    anthropic.post(ANTHROPIC_URL, json=question("Anything else?", input_tokens=usages[2][0],
                                                output_tokens=usages[2][1]))

    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    send(visitor, draft_id, "Looks right")

    assert chat_costs(owner_conn, client_of(owner_conn, email)) == [
        ("chat", "anthropic", "claude-sonnet-5-5", i, o, PRICE_VERSION, llm_cost_microusd("claude-sonnet-5-5", i, o),
         1, None)
        for i, o in usages
    ]
    assert "chat" in html_of(visitor.get("/costs"))


def test_cached_and_uncached_input_are_recorded_and_priced_apart(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    anthropic.post(ANTHROPIC_URL, json=question("Which channel?", input_tokens=40, output_tokens=30,
                                                cache_creation_input_tokens=6000, cache_read_input_tokens=0))
    anthropic.post(ANTHROPIC_URL, json=question("Which day?", input_tokens=25, output_tokens=20,
                                                cache_creation_input_tokens=60, cache_read_input_tokens=6000))
    draft_id = draft_id_of(start_chat(visitor, "Summarise customer emails to Slack"))
    send(visitor, draft_id, "#support")

    rows = owner_conn.execute(
        "SELECT input_tokens, cache_creation_input_tokens, cache_read_input_tokens, output_tokens, amount_microusd "
        "FROM cost_events WHERE client_id = %s ORDER BY occurred_at", [client_of(owner_conn, email)]).fetchall()
    # Sonnet 5.5 per million tokens: $2 uncached, $2.50 written to the cache, $0.10 read from it, $10 out.
    assert rows == [(40, 6000, 0, 30, 80 + 15_000 + 0 + 300), (25, 60, 6000, 20, 50 + 150 + 600 + 200)]
    page = html_of(visitor.get("/costs"))
    assert "65 / 6060 / 6000" in page  # this month's line sums both calls, each count apart


def test_a_client_over_budget_is_told_before_any_call_is_made(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 5000 WHERE client_id = %s", [client_id])
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd) "
                       "VALUES (%s, 'llm', 'anthropic', 5000)", [client_id])

    assert "budget is used up" in html_of(visitor.get("/chat/new"))
    response = start_chat(visitor, "Summarise customer emails to #support")

    assert response.status_code == 409
    assert "This month's budget is used up, so Claude was not asked" in html_of(response)
    assert len(anthropic.calls) == 0
    assert [role for role, _ in owner_conn.execute("SELECT role, content FROM chat_messages").fetchall()] == [
        "client"]


def test_a_repair_is_not_attempted_once_the_budget_is_used_up(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1 WHERE client_id = %s", [client_id])
    anthropic.post(ANTHROPIC_URL, json=proposal(with_step(DIGEST, 0, input={"query": ""})))

    response = start_chat(visitor, "Summarise customer emails to #support")

    assert response.status_code == 409
    assert len(anthropic.calls) == 1
    assert len(chat_costs(owner_conn, client_id)) == 1


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "shown"), [
    ({"status": 500, "json": {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}},
     "Claude answered with an error (500)"),
    ({"status": 529, "json": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}},
     "Claude is busy right now"),
    ({"body": requests.exceptions.ReadTimeout()}, "Claude did not answer in time"),
])
def test_a_model_error_or_timeout_gives_a_clear_message_and_loses_no_message(
    signed_up, owner_conn, anthropic, answer, shown
):
    visitor, email = signed_up
    anthropic.post(ANTHROPIC_URL, **answer)
    anthropic.post(ANTHROPIC_URL, json=question("Which channel?"))

    response = start_chat(visitor, "Summarise customer emails every morning")

    assert response.status_code == 502
    page = html_of(response)
    assert shown in page and "Your message is saved" in page
    assert "Summarise customer emails every morning" in page
    assert "Internal server error" not in page and "Overloaded" not in page
    draft_id = owner_conn.execute("SELECT draft_id FROM chat_drafts").fetchone()[0]
    assert stored_messages(owner_conn, draft_id) == [("client", "Summarise customer emails every morning")]
    assert chat_costs(owner_conn, client_of(owner_conn, email)) == []

    again = visitor.post(f"/chat/{draft_id}/ask-again", token_from=f"/chat/{draft_id}")

    assert again.status_code == 303
    assert stored_messages(owner_conn, draft_id) == [("client", "Summarise customer emails every morning"),
                                                     ("assistant", "Which channel?")]


def test_without_an_anthropic_key_the_chat_is_unavailable_and_points_to_the_form_builder(
    database, agent_db, intake_db, owner_conn
):
    agent = build_agent_app(database, agent_db, service_token=AGENT_TOKEN, environ={})
    visitor = Visitor(build_intake_app(database, intake_db, WSGIAdapter(agent)))
    visitor.signup(new_email(), PASSWORD)

    with responses.RequestsMock() as mock:
        page = html_of(visitor.get("/chat/new"))
        response = start_chat(visitor, "Summarise customer emails every morning")
        assert len(mock.calls) == 0

    assert "The build chat is unavailable" in page and "form builder" in page
    assert "<textarea" not in page
    assert response.status_code == 503
    assert "form builder" in html_of(response)
    assert owner_conn.execute("SELECT role FROM chat_messages").fetchall() == [("client",)]
    client_id = owner_conn.execute("SELECT client_id FROM clients").fetchone()[0]
    direct = agent.test_client().post(f"/v1/clients/{client_id}/chat/{uuid.uuid4()}/replies",
                                      headers=with_proof({"Authorization": f"Bearer {AGENT_TOKEN}"}, "session",
                                                         visitor.session_cookie()))
    assert direct.status_code == 503 and direct.json["error"] == "chat_unavailable"


# --- isolation and logs -------------------------------------------------------------------


def test_another_clients_draft_id_is_a_404_everywhere(intake_app, agent_service_app, owner_conn, anthropic):
    owner, intruder = Visitor(intake_app), Visitor(intake_app, address="198.51.100.9")
    owner.signup(new_email(), PASSWORD)
    intruder_email = new_email()
    intruder.signup(intruder_email, PASSWORD)
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    draft_id = draft_id_of(start_chat(owner, "Summarise customer emails to #support"))
    revision = "1"

    assert intruder.get(f"/chat/{draft_id}").status_code == 404
    assert intruder.post(f"/chat/{draft_id}/messages", {"message": "mine now"}, token_from="/chat/new"
                         ).status_code == 404
    assert intruder.post(f"/chat/{draft_id}/ask-again", token_from="/chat/new").status_code == 404
    assert intruder.post(f"/chat/{draft_id}/approve", {"revision": revision}, token_from="/chat/new"
                         ).status_code == 404
    intruder_id = client_of(owner_conn, intruder_email)
    direct = agent_service_app.test_client().post(f"/v1/clients/{intruder_id}/chat/{draft_id}/replies",
                                                  headers=with_proof({"Authorization": f"Bearer {AGENT_TOKEN}"},
                                                                     "session", intruder.session_cookie()))
    assert direct.status_code == 404 and direct.json["error"] == "not_found"
    assert len(anthropic.calls) == 1
    assert owner_conn.execute("SELECT count(*) FROM chat_messages WHERE content = 'mine now'").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)


def test_chat_content_never_reaches_the_logs(signed_up, anthropic, caplog):
    visitor, _ = signed_up
    canary = "canary-" + secrets.token_hex(8)
    caplog.set_level(logging.DEBUG)
    anthropic.post(ANTHROPIC_URL, json=question(f"Which channel, {canary}-q?"))
    anthropic.post(ANTHROPIC_URL, json=proposal(with_step(DIGEST, 0, input={"query": f"{canary} is:unread"}),
                                                note=f"Done {canary}-note"))
    anthropic.post(ANTHROPIC_URL, status=500, json={"type": "error", "error": {"type": "api_error",
                                                                             "message": canary}})

    draft_id = draft_id_of(start_chat(visitor, f"My secret plan {canary}-client"))
    send(visitor, draft_id, f"#support {canary}")
    send(visitor, draft_id, f"one more {canary}")
    approve(visitor, draft_id)

    assert canary in html_of(visitor.get(f"/chat/{draft_id}"))  # the client sees it...
    formatter = JSONFormatter(service="test")
    logged = "\n".join(formatter.format(record) + repr(record.__dict__) for record in caplog.records)
    assert "chat replied" in logged and "chat reply failed" in logged
    assert canary not in logged  # ...no log line does
    assert API_KEY not in logged


def test_deleting_the_account_deletes_its_drafts_and_messages(signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    anthropic.post(ANTHROPIC_URL, json=proposal(DIGEST))
    draft_id_of(start_chat(visitor, "Summarise customer emails to #support"))
    client_id = client_of(owner_conn, email)
    assert owner_conn.execute("SELECT count(*) FROM chat_drafts WHERE client_id = %s", [client_id]).fetchone() == (1,)

    assert visitor.delete_account(PASSWORD).status_code == 303

    for table in ("chat_drafts", "chat_messages", "cost_events"):
        assert owner_conn.execute(f"SELECT count(*) FROM {table} WHERE client_id = %s",  # noqa: S608 - fixed names
                                  [client_id]).fetchone() == (0,), table


NEW_ROW_TO_SLACK = {
    "name": "New lead to Slack",
    "trigger": {"kind": "poll", "source": "sheets.new_row", "every_minutes": 10,
                "options": {"spreadsheet_id": "1AbCdEfGhIjKlMnOpQrStUv", "sheet": "Leads"}},
    "steps": [{"capability": "slack.post_message",
               "input": {"channel": "#sales", "text": "New lead: {{ trigger.row.full_name }}"}}],
}


def test_the_chat_proposes_a_poll_trigger_with_its_read_only_scope_and_a_too_frequent_one_is_repaired(
        signed_up, owner_conn, anthropic):
    visitor, email = signed_up
    too_often = {**NEW_ROW_TO_SLACK, "trigger": {**NEW_ROW_TO_SLACK["trigger"], "every_minutes": 1}}
    anthropic.post(ANTHROPIC_URL, json=proposal(too_often))
    anthropic.post(ANTHROPIC_URL, json=proposal(NEW_ROW_TO_SLACK))

    draft_id = draft_id_of(start_chat(visitor, "Tell #sales about each new lead in my sheet"))

    refusal = sent_bodies(anthropic)[1]["messages"][-1]["content"][0]
    assert refusal["is_error"] is True and "every 5 minutes at the finest" in refusal["content"]
    shown = proposal_section(html_of(visitor.get(f"/chat/{draft_id}")))
    assert "Runs once for each new row in a Google Sheet, checked every 10 minutes" in shown
    assert set(_CODE.findall(shown)) == {G + "spreadsheets.readonly", "chat:write"}
    assert approve(visitor, draft_id).status_code == 303
    trigger = owner_conn.execute("SELECT trigger FROM automations WHERE client_id = %s",
                                 [client_of(owner_conn, email)]).fetchone()[0]
    assert trigger["kind"] == "poll" and trigger["source"] == "sheets.new_row"
