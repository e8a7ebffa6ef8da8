"""Notion's block append and HubSpot's contact creation."""

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

PAGE_ID = "59833787-2cf9-4fdf-8782-e53db20768a5"
CANARY = "CANARY-crm-note-41d2"


def context(provider: str) -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=1,
                       http=ProviderHTTP(get_provider(provider), verify="/dev/null"),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run:step")


@responses.activate
def test_notion_appends_a_paragraph_block_with_the_version_header():
    responses.patch(f"https://api.notion.com/v1/blocks/{PAGE_ID}/children", json={
        "object": "list", "next_cursor": None, "has_more": False, "type": "block", "block": {},
        "results": [{"object": "block", "id": "c02fc1d3-db8b-45c5-a222-27595b15aea7", "type": "paragraph",
                     "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Daily summary"}}]}}]})
    result = run_capability("notion.append_to_page", context("notion"), Secret("ntn_canary"),
                            {"page_id": PAGE_ID, "text": "Daily summary"})
    request = responses.calls[0].request
    assert request.method == "PATCH"
    assert request.headers["Notion-Version"] == "2022-06-28"
    assert request.headers["Authorization"] == "Bearer ntn_canary"
    assert json.loads(request.body) == {"children": [{
        "object": "block", "type": "paragraph",
        "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Daily summary"}}]}}]}
    assert result.output == {"id": "c02fc1d3-db8b-45c5-a222-27595b15aea7"}
    assert result.counts == {"blocks": 1, "characters": 13}


@responses.activate
def test_notion_404_says_to_share_the_page_and_409_is_retried():
    url = f"https://api.notion.com/v1/blocks/{PAGE_ID}/children"
    responses.patch(url, status=404, json={"object": "error", "status": 404, "code": "object_not_found",
                                           "message": f"Could not find block {CANARY}"})
    with pytest.raises(ProviderRefused, match="share it") as caught:
        run_capability("notion.append_to_page", context("notion"), Secret("t"), {"page_id": PAGE_ID, "text": "x"})
    assert CANARY not in str(caught.value)
    responses.replace(responses.PATCH, url, status=409, json={"object": "error", "code": "conflict_error"})
    with pytest.raises(ProviderTransient):
        run_capability("notion.append_to_page", context("notion"), Secret("t"), {"page_id": PAGE_ID, "text": "x"})
    responses.replace(responses.PATCH, url, status=401, json={"object": "error", "code": "unauthorized"})
    with pytest.raises(ProviderUnauthorized):
        run_capability("notion.append_to_page", context("notion"), Secret("t"), {"page_id": PAGE_ID, "text": "x"})


@responses.activate
def test_hubspot_creates_a_contact_with_its_property_names():
    responses.post("https://api.hubapi.com/crm/v3/objects/contacts", status=201, json={
        "id": "512", "properties": {"email": "ada@example.com", "firstname": "Ada", "hs_object_id": "512"},
        "createdAt": "2026-01-02T10:00:00.000Z", "updatedAt": "2026-01-02T10:00:00.000Z", "archived": False})
    result = run_capability("hubspot.create_contact", context("hubspot"), Secret("CiQ-hubspot-canary"),
                            {"email": "ada@example.com", "first_name": "Ada", "last_name": "", "company": ""})
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer CiQ-hubspot-canary"
    assert json.loads(request.body) == {"properties": {"email": "ada@example.com", "firstname": "Ada"}}
    assert result.output == {"id": "512"} and result.counts == {"contacts": 1}


@responses.activate
def test_hubspot_409_means_the_contact_exists():
    responses.post("https://api.hubapi.com/crm/v3/objects/contacts", status=409, json={
        "status": "error", "message": "Contact already exists. Existing ID: 512",
        "correlationId": "b9d2f1f0", "category": "CONFLICT"})
    with pytest.raises(ProviderRefused, match="already exists") as caught:
        run_capability("hubspot.create_contact", context("hubspot"), Secret("t"), {"email": "ada@example.com"})
    assert "ada@example.com" not in str(caught.value)


@responses.activate
def test_hubspot_5xx_is_transient():
    responses.post("https://api.hubapi.com/crm/v3/objects/contacts", status=502, body="Bad gateway")
    with pytest.raises(ProviderTransient):
        run_capability("hubspot.create_contact", context("hubspot"), Secret("t"), {"email": "ada@example.com"})
