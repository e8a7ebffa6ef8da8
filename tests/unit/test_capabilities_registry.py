"""The registry covers the catalog, holds outputs to their schemas, and keeps content out of metadata."""

from __future__ import annotations

import base64
import inspect
import json
import logging
from uuid import uuid4

import pytest
import responses

from agent_service.capabilities.base import (
    LLMSettings,
    LLMUsage,
    OutputInvalid,
    ProviderHTTP,
    ProviderRefused,
    ProviderTransient,
    StepContext,
    StepResult,
)
from agent_service.capabilities.registry import IMPLEMENTATIONS, run_capability
from shared.catalog import CAPABILITIES, get_provider
from shared.secret import Secret

EMAIL_CANARY = "CANARY-email-body-a11c"
REPLY_CANARY = "CANARY-llm-reply-b22d"


def context(provider: str) -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=0,
                       http=ProviderHTTP(get_provider(provider), verify="/dev/null"),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run:step")


def test_every_catalog_capability_has_an_implementation_and_nothing_else_does():
    assert set(IMPLEMENTATIONS) == set(CAPABILITIES)


@pytest.mark.parametrize("key", sorted(CAPABILITIES))
def test_every_implementation_takes_context_token_and_data(key):
    assert list(inspect.signature(IMPLEMENTATIONS[key]).parameters) == ["ctx", "token", "data"]


def test_an_output_that_does_not_match_the_schema_is_output_invalid_and_keeps_usage(monkeypatch):
    usage = [LLMUsage("claude-sonnet-5-5", 10, 2)]
    monkeypatch.setitem(IMPLEMENTATIONS, "llm.summarise",
                        lambda ctx, token, data: StepResult({"summary": EMAIL_CANARY}, llm_usage=usage))
    with pytest.raises(OutputInvalid) as caught:
        run_capability("llm.summarise", context("anthropic"), None, {"text": "x"})
    assert EMAIL_CANARY not in str(caught.value) and caught.value.llm_usage == usage


def test_counts_must_be_whole_numbers(monkeypatch):
    monkeypatch.setitem(IMPLEMENTATIONS, "llm.summarise",
                        lambda ctx, token, data: StepResult({"text": "ok"}, counts={"subject": EMAIL_CANARY}))
    with pytest.raises(OutputInvalid) as caught:
        run_capability("llm.summarise", context("anthropic"), None, {"text": "x"})
    assert EMAIL_CANARY not in str(caught.value)


def test_unknown_capabilities_are_not_run():
    with pytest.raises(KeyError):
        run_capability("gmail.send", context("google"), Secret("t"), {})


@responses.activate
def test_a_canary_run_keeps_content_out_of_counts_errors_and_logs(caplog):
    """Gmail read, LLM summary, Slack post: canaries travel in outputs only."""
    caplog.set_level(logging.DEBUG)
    body = base64.urlsafe_b64encode(f"Meet at noon. {EMAIL_CANARY}".encode()).decode()
    responses.get("https://www.googleapis.com/gmail/v1/users/me/messages/m1", json={
        "id": "m1", "threadId": "m1", "payload": {
            "mimeType": "text/plain", "filename": "", "body": {"size": 30, "data": body},
            "headers": [{"name": "From", "value": "ada@example.com"}, {"name": "Subject", "value": EMAIL_CANARY}]}})
    responses.post("https://api.anthropic.com/v1/messages", json={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": f"Noon meeting. {REPLY_CANARY}"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 50, "output_tokens": 8}})
    responses.post("https://slack.com/api/chat.postMessage", json={"ok": False, "error": "not_in_channel"})

    read = run_capability("gmail.read", context("google"), Secret("ya29.t"), {"message_ids": ["m1"]})
    summary = run_capability("llm.summarise", context("anthropic"), None,
                             {"text": read.output["emails"], "instructions": "", "max_words": 30})
    assert EMAIL_CANARY in responses.calls[1].request.body.decode()  # the content did travel to the model
    with pytest.raises(ProviderRefused) as caught:
        run_capability("slack.post_message", context("slack"), Secret("xoxb-t"),
                       {"channel": "#general", "text": summary.output["text"]})

    metadata = json.dumps([read.counts, summary.counts, [u.__dict__ for u in summary.llm_usage]])
    for canary in (EMAIL_CANARY, REPLY_CANARY):
        assert canary not in metadata
        assert canary not in str(caught.value)
        assert canary not in caplog.text
    assert summary.llm_usage == [LLMUsage("claude-sonnet-5-5", 50, 8)]


@responses.activate
def test_a_timeout_is_transient_and_names_only_the_provider():
    import requests

    responses.get("https://www.googleapis.com/gmail/v1/users/me/messages",
                  body=requests.exceptions.ReadTimeout("read timed out ?q=" + EMAIL_CANARY))
    with pytest.raises(ProviderTransient) as caught:
        run_capability("gmail.search", context("google"), Secret("t"), {"query": EMAIL_CANARY, "max_results": 1})
    assert str(caught.value) == "Google Workspace did not answer in time."
