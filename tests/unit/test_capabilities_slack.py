"""Slack's chat.postMessage, whose failures arrive as 200 with ok:false."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
import responses

from agent_service.capabilities.base import (
    LLMSettings,
    ProviderHTTP,
    ProviderRefused,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
)
from agent_service.capabilities.registry import run_capability
from shared.catalog import get_provider
from shared.secret import Secret

URL = "https://slack.com/api/chat.postMessage"
TOKEN = Secret("xoxb-canary-token")
CANARY = "CANARY-slack-message-9c1e"


def context() -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=2,
                       http=ProviderHTTP(get_provider("slack"), verify="/dev/null"),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run:step")


@responses.activate
def test_post_message_sends_channel_and_text_as_utf8_json_with_the_bot_token():
    responses.post(URL, json={"ok": True, "channel": "C0123456789", "ts": "1767258000.000200",
                              "message": {"type": "message", "text": "Résumé ready", "bot_id": "B01"}})
    result = run_capability("slack.post_message", context(), TOKEN, {"channel": "C0123456789",
                                                                     "text": "Résumé ready"})
    request = responses.calls[0].request
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer xoxb-canary-token"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.body) == {"channel": "C0123456789", "text": "Résumé ready"}
    assert result.output == {"channel": "C0123456789", "ts": "1767258000.000200"}
    assert result.counts == {"messages": 1, "characters": 12}


@pytest.mark.parametrize("code", ["invalid_auth", "token_revoked", "token_expired", "not_authed"])
@responses.activate
def test_slack_auth_errors_are_provider_unauthorized(code):
    responses.post(URL, json={"ok": False, "error": code})
    with pytest.raises(ProviderUnauthorized, match=code):
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": "hi"})


@responses.activate
def test_slack_ratelimited_is_transient():
    responses.post(URL, json={"ok": False, "error": "ratelimited"})
    with pytest.raises(ProviderTransient):
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": "hi"})


@responses.activate
def test_slack_http_429_honours_retry_after():
    responses.post(URL, status=429, headers={"Retry-After": "30"}, json={"ok": False, "error": "ratelimited"})
    with pytest.raises(ProviderTransient) as caught:
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": "hi"})
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(("code", "phrase"), [("channel_not_found", "does not know that channel"),
                                              ("not_in_channel", "/invite"),
                                              ("some_new_error", "some_new_error")])
@responses.activate
def test_other_slack_errors_are_refused_with_a_clear_message(code, phrase):
    responses.post(URL, json={"ok": False, "error": code})
    with pytest.raises(ProviderRefused, match=phrase):
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": "hi"})


@responses.activate
def test_a_slack_error_code_that_is_not_an_identifier_is_not_repeated():
    responses.post(URL, json={"ok": False, "error": f"weird {CANARY}"})
    with pytest.raises(ProviderRefused) as caught:
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": CANARY})
    assert CANARY not in str(caught.value) and "xoxb" not in str(caught.value)


@responses.activate
def test_slack_5xx_is_transient_and_does_not_echo_the_message():
    responses.post(URL, status=503, body=f"busy {CANARY}")
    with pytest.raises(ProviderTransient) as caught:
        run_capability("slack.post_message", context(), TOKEN, {"channel": "#general", "text": CANARY})
    assert CANARY not in str(caught.value)
