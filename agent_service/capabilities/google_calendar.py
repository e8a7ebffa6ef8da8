"""Google Calendar: list upcoming events and create one (events.list, events.insert)."""

from __future__ import annotations

from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    StepContext,
    StepFailed,
    StepResult,
    path_segment,
    response_json,
)
from agent_service.capabilities.event_times import aware, rfc3339, window
from agent_service.capabilities.google_api import google_json, google_request
from shared.secret import Secret


def _events_path(calendar_id: str) -> str:
    return f"calendar/v3/calendars/{path_segment(calendar_id, 'calendar id')}/events"


def list_events(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Events in the window, recurring ones expanded, in start order."""
    start, end = window(data.get("days_ahead", 1))
    answer = google_json(ctx, "GET", _events_path(data.get("calendar_id", "primary")), token,
                         params={"timeMin": rfc3339(start), "timeMax": rfc3339(end), "singleEvents": "true",
                                 "orderBy": "startTime", "maxResults": data.get("max_results", 50)})
    items = answer.get("items", []) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise OutputInvalid("Google Calendar answered with an unexpected event list.")
    events = [
        {"id": str(item["id"]), "title": str(item.get("summary", "")),
         "start": _when(item.get("start")), "end": _when(item.get("end"))}
        for item in items
        if isinstance(item, dict) and "id" in item and item.get("status") != "cancelled"
    ]
    return StepResult({"events": events}, counts={"events": len(events)})


def create_event(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """A new event whose id derives from the step's idempotency key.

    Google lets the caller choose an event id (base32hex, 5 to 1024 characters) and answers
    409 when it exists, so a retried step finds its own event instead of creating a second.
    """
    start, end = aware(data["start"], "start"), aware(data["end"], "end")
    if end <= start:
        raise StepFailed("The event must end after it starts.")
    event_id = ctx.provider_request_id()
    response = google_request(
        ctx, "POST", _events_path(data.get("calendar_id", "primary")), token, tolerate=frozenset({409}),
        json={"id": event_id, "summary": data["title"], "description": data.get("description", ""),
              "start": {"dateTime": rfc3339(start)}, "end": {"dateTime": rfc3339(end)}})
    if response.status_code == 409:
        return StepResult({"id": event_id}, counts={"events": 1})
    created = response_json(ctx.http.provider, response)
    if not isinstance(created, dict) or not isinstance(created.get("id"), str):
        raise OutputInvalid("Google Calendar answered without an event id.")
    return StepResult({"id": created["id"]}, counts={"events": 1})


def _when(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return str(value.get("dateTime") or value.get("date") or "")
