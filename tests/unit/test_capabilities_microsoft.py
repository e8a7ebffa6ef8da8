"""Outlook mail search and calendar through Microsoft Graph."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
import responses

from agent_service.capabilities.base import (
    LLMSettings,
    ProviderHTTP,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
)
from agent_service.capabilities.registry import run_capability
from shared.catalog import get_provider
from shared.secret import Secret

GRAPH = "https://graph.microsoft.com/v1.0"
TOKEN = Secret("eyJ0eXAi.graph-canary")


def context() -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=0,
                       http=ProviderHTTP(get_provider("microsoft"), verify="/dev/null"),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run:step")


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_search_mail_uses_a_quoted_search_with_eventual_consistency():
    responses.get(f"{GRAPH}/me/messages", json={
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/messages",
        "value": [{"@odata.etag": "W/\"CQAAABYAAAA\"", "id": "AAMkAGI2TG93AAA=", "subject": "Invoice 7",
                   "receivedDateTime": "2026-01-02T08:15:00Z", "conversationId": "AAQkAGI2conv=",
                   "from": {"emailAddress": {"name": "Ada Lovelace", "address": "ada@example.com"}}}]})
    result = run_capability("outlook.search_mail", context(), TOKEN,
                            {"query": 'invoice "march"', "max_results": 10})
    request = responses.calls[0].request
    assert request.headers["ConsistencyLevel"] == "eventual"
    assert request.headers["Authorization"] == "Bearer eyJ0eXAi.graph-canary"
    params = query(responses.calls[0])
    assert params["$search"] == ['"invoice \\"march\\""'] and params["$top"] == ["10"]
    assert "from" in params["$select"][0]
    assert result.output == {"messages": [{"id": "AAMkAGI2TG93AAA=", "thread_id": "AAQkAGI2conv=",
                                           "sender": "Ada Lovelace <ada@example.com>", "subject": "Invoice 7",
                                           "date": "2026-01-02T08:15:00Z"}]}
    assert result.counts == {"messages": 1}


@responses.activate
def test_list_events_reads_the_calendar_view_in_utc():
    responses.get(f"{GRAPH}/me/calendarView", json={"value": [
        {"id": "AAMkEv1", "subject": "Board meeting", "isCancelled": False,
         "start": {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": "2026-01-05T10:00:00.0000000", "timeZone": "UTC"}},
        {"id": "AAMkEv2", "subject": "Cancelled", "isCancelled": True,
         "start": {"dateTime": "2026-01-05T11:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": "2026-01-05T12:00:00.0000000", "timeZone": "UTC"}}]})
    result = run_capability("outlook.list_events", context(), TOKEN, {"calendar_id": "primary", "days_ahead": 2,
                                                                      "max_results": 25})
    request = responses.calls[0].request
    assert request.headers["Prefer"] == 'outlook.timezone="UTC"'
    params = query(responses.calls[0])
    assert params["$top"] == ["25"] and params["$orderby"] == ["start/dateTime"]
    start = datetime.fromisoformat(params["startDateTime"][0].replace("Z", "+00:00"))
    end = datetime.fromisoformat(params["endDateTime"][0].replace("Z", "+00:00"))
    assert round((end - start).total_seconds()) == 2 * 86400
    assert result.output == {"events": [{"id": "AAMkEv1", "title": "Board meeting",
                                         "start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:00:00Z"}]}


@responses.activate
def test_list_events_of_another_calendar_uses_its_encoded_id():
    responses.get(f"{GRAPH}/me/calendars/AAMkCal%2F1%3D/calendarView", json={"value": []})
    result = run_capability("outlook.list_events", context(), TOKEN, {"calendar_id": "AAMkCal/1=", "days_ahead": 1,
                                                                      "max_results": 5})
    assert result.output == {"events": []}


@responses.activate
def test_create_event_posts_utc_times_and_a_transaction_id_for_retries():
    ctx = context()
    responses.post(f"{GRAPH}/me/events", status=201, json={"id": "AAMkNewEvent=", "subject": "Call Ada"})
    result = run_capability("outlook.create_event", ctx, TOKEN, {
        "calendar_id": "primary", "title": "Call Ada", "description": "Quote",
        "start": datetime(2026, 2, 3, 11, 0, tzinfo=UTC), "end": datetime(2026, 2, 3, 11, 30, tzinfo=UTC)})
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {"subject": "Call Ada", "body": {"contentType": "text", "content": "Quote"},
                    "start": {"dateTime": "2026-02-03T11:00:00", "timeZone": "UTC"},
                    "end": {"dateTime": "2026-02-03T11:30:00", "timeZone": "UTC"},
                    "transactionId": ctx.provider_request_id()}
    assert result.output == {"id": "AAMkNewEvent="} and result.counts == {"events": 1}


@responses.activate
def test_graph_401_and_throttling_are_mapped():
    responses.get(f"{GRAPH}/me/messages", status=401, json={"error": {"code": "InvalidAuthenticationToken"}})
    with pytest.raises(ProviderUnauthorized):
        run_capability("outlook.search_mail", context(), TOKEN, {"query": "x", "max_results": 1})
    responses.replace(responses.GET, f"{GRAPH}/me/messages", status=429, headers={"Retry-After": "4"},
                      json={"error": {"code": "TooManyRequests"}})
    with pytest.raises(ProviderTransient) as caught:
        run_capability("outlook.search_mail", context(), TOKEN, {"query": "x", "max_results": 1})
    assert caught.value.retry_after == 4.0
