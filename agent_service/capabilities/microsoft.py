"""Microsoft Graph: search Outlook mail, list and create Outlook calendar events."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    StepContext,
    StepFailed,
    StepResult,
    path_segment,
    require_token,
)
from agent_service.capabilities.event_times import aware, rfc3339, window
from shared.secret import Secret

UTC_TIMES = {"Prefer": 'outlook.timezone="UTC"'}


def _calendar_path(calendar_id: str, collection: str) -> str:
    if calendar_id == "primary":
        return f"me/{collection}"
    return f"me/calendars/{path_segment(calendar_id, 'calendar id')}/{collection}"


def search_mail(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Messages matching a search (KQL over subject, body, sender), newest first."""
    answer = ctx.http.json(
        "GET", "me/messages", token=require_token(token, ctx.http.provider),
        headers={"ConsistencyLevel": "eventual"},
        params={"$search": kql_search(data["query"]), "$top": data.get("max_results", 20),
                "$select": "id,conversationId,subject,from,receivedDateTime"})
    messages = [
        {"id": str(item["id"]), "thread_id": str(item.get("conversationId") or ""),
         "sender": address(item.get("from")), "subject": str(item.get("subject") or ""),
         "date": str(item.get("receivedDateTime") or "")}
        for item in _values(answer) if "id" in item
    ]
    return StepResult({"messages": messages}, counts={"messages": len(messages)})


def kql_search(query: str) -> str:
    """A search as Graph's $search takes it: one double-quoted string, quotes and backslashes inside escaped."""
    return '"' + query.replace("\\", "\\\\").replace('"', '\\"') + '"'


def list_events(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Events in the window from the calendar view, which expands recurring events."""
    start, end = window(data.get("days_ahead", 1))
    answer = ctx.http.json(
        "GET", _calendar_path(data.get("calendar_id", "primary"), "calendarView"),
        token=require_token(token, ctx.http.provider), headers=UTC_TIMES,
        params={"startDateTime": rfc3339(start), "endDateTime": rfc3339(end), "$top": data.get("max_results", 50),
                "$orderby": "start/dateTime", "$select": "id,subject,start,end,isCancelled"})
    events = [
        {"id": str(item["id"]), "title": str(item.get("subject") or ""),
         "start": _graph_time(item.get("start")), "end": _graph_time(item.get("end"))}
        for item in _values(answer) if "id" in item and not item.get("isCancelled")
    ]
    return StepResult({"events": events}, counts={"events": len(events)})


def create_event(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """A new event; Graph's transactionId lets it recognise a retried POST of the same event."""
    start, end = aware(data["start"], "start"), aware(data["end"], "end")
    if end <= start:
        raise StepFailed("The event must end after it starts.")
    created = ctx.http.json(
        "POST", _calendar_path(data.get("calendar_id", "primary"), "events"),
        token=require_token(token, ctx.http.provider), headers=UTC_TIMES,
        json={"subject": data["title"],
              "body": {"contentType": "text", "content": data.get("description", "")},
              "start": {"dateTime": _graph_local(start), "timeZone": "UTC"},
              "end": {"dateTime": _graph_local(end), "timeZone": "UTC"},
              "transactionId": ctx.provider_request_id()})
    if not isinstance(created, dict) or not isinstance(created.get("id"), str):
        raise OutputInvalid("Microsoft Graph answered without an event id.")
    return StepResult({"id": created["id"]}, counts={"events": 1})


def _values(answer: Any) -> list[dict[str, Any]]:
    values = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(values, list):
        raise OutputInvalid("Microsoft Graph answered with an unexpected collection.")
    return [item for item in values if isinstance(item, dict)]


def address(value: Any) -> str:
    """A Graph recipient as Name <address>."""
    email = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(email, dict):
        return ""
    name, address = str(email.get("name") or ""), str(email.get("address") or "")
    return f"{name} <{address}>" if name and address and name != address else address or name


def _graph_time(value: Any) -> str:
    """Graph's '2026-05-01T09:00:00.0000000' in UTC (as Prefer asked) as RFC 3339."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return ""
    moment = value["dateTime"][:19]
    return f"{moment}Z" if str(value.get("timeZone", "UTC")).upper() == "UTC" else moment


def _graph_local(moment: Any) -> str:
    return str(moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"))
