"""The build chat in a real browser (JavaScript off), the live agent asking the Anthropic stand-in."""

from __future__ import annotations

import json
import secrets
import uuid
from urllib.parse import urlsplit

from playwright.sync_api import expect

from shared.catalog import required_scopes
from tests.e2e.conftest import sign_up_and_log_in
from tests.factories import client_of

PASSWORD = "correct horse battery staple"
G = "https://www.googleapis.com/auth/"
DIGEST = {
    "name": "Customer email digest",
    "trigger": {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/Paris"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "is:unread newer_than:1d"}},
        {"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}}},
        {"capability": "slack.post_message", "input": {"channel": "#support", "text": {"$ref": "steps.1.text"}}},
    ],
}


def answer(name: str, tool_input: dict) -> dict:
    """A Messages API response whose one content block calls a tool, as the real API sends it."""
    return {"id": "msg_" + secrets.token_hex(6), "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
            "content": [{"type": "tool_use", "id": "toolu_" + secrets.token_hex(6), "name": name, "input": tool_input}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 2100, "output_tokens": 140}}


def test_a_client_describes_an_automation_in_words_and_approves_the_proposal(
        no_script_page, live_stack, provider_standin, owner):
    page = no_script_page
    canary = "canary-" + secrets.token_hex(6)
    email = f"e2e-chat-{uuid.uuid4().hex[:10]}@example.com"
    state = provider_standin.state
    calls_before = len(state.llm_api_keys)
    state.script_llm(answer("ask_question", {"question": "Which Slack channel should the summary go to?"}),
                     answer("propose_automation", {"automation": DIGEST,
                                                   "message": "Each weekday at 8:00 this posts the summary."}))

    sign_up_and_log_in(page, live_stack.database.owner_dsn, email=email, password=PASSWORD)
    page.get_by_role("link", name="Build chat").click()
    page.get_by_role("link", name="Describe it in words").click()
    page.get_by_label("Your message").fill(f"Every weekday at 8 in Paris, summarise customer emails ({canary}).")
    page.get_by_role("button", name="Start the chat").click()

    expect(page.get_by_text("Which Slack channel should the summary go to?")).to_be_visible()
    assert urlsplit(page.url).path.startswith("/chat/")
    page.get_by_label("Your message").fill(f"#support ({canary})")
    page.get_by_role("button", name="Send").click()

    proposal = page.locator("section", has=page.get_by_role("heading", name="The proposal"))
    expect(proposal.get_by_text("every weekday at 08:00 (Europe/Paris time)", exact=False)).to_be_visible()
    assert sorted(proposal.locator("code").all_inner_texts()) == sorted([G + "gmail.readonly", "chat:write"])
    proposal.get_by_role("button", name="Approve").click()

    expect(page.get_by_text("Approved. It is saved as the automation")).to_be_visible()
    client_id = client_of(owner, email)
    rows = owner.execute("SELECT name, status, steps FROM automations WHERE client_id = %s", [client_id]).fetchall()
    assert [(name, status) for name, status, _ in rows] == [("Customer email digest", "draft")]
    assert required_scopes(rows[0][2]) == {"google": (G + "gmail.readonly",), "slack": ("chat:write",)}
    assert state.llm_api_keys[calls_before:] == [live_stack.env["ANTHROPIC_API_KEY"]] * 2
    assert state.llm_script == []
    bodies = [json.loads(body) for body in state.bodies["POST /v1/messages"][-2:]]
    assert all("tool_choice" not in b and "temperature" not in b for b in bodies)
    costs = owner.execute("SELECT count(*), sum(input_tokens) FROM cost_events "
                          "WHERE client_id = %s AND source = 'chat'", [client_id]).fetchone()
    assert costs == (2, 4200)
    assert canary not in live_stack.logs()
