"""Microsoft Graph, Notion and HubSpot shaped APIs: the calls the capabilities and polls make, on sample data.

Outlook's mail is the sandbox's one mailbox (Gmail's): the inbox delta's token is the mailbox's history
id, so the Gmail page's "Deliver a new email" is a new email in Outlook too; a token older than the
sample mail, or not one the sandbox gave, is answered 410 Gone with syncStateNotFound, as Graph does.
"""

from __future__ import annotations

import calendar
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from hapex.sandbox import oauth
from hapex.sandbox.google import HISTORY_FLOOR, _matches
from hapex.sandbox.views import store

bp = Blueprint("others", __name__)
NOTION_PAGE_ID = "5a1e5a1e-0000-4000-8000-00000000c0de"


def _error(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _graph_guard(*any_of: str) -> Response | None:
    access = oauth.bearer_access("microsoft")
    if access is None:
        return _error(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is invalid."}})
    if not access.scopes & set(any_of):
        return _error(403, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}})
    return None


def _graph_message(m: dict[str, Any], *fields: str) -> dict[str, Any]:
    """A sandbox email as Graph's message resource, with the $select'ed properties (id always)."""
    sender = {"emailAddress": {"name": m["from"].split(" <")[0], "address": m["from"].split("<")[-1].rstrip(">")}}
    full: dict[str, Any] = {
        "id": "AAMk-" + m["id"], "conversationId": "AAQk-" + m["threadId"], "subject": m["subject"],
        "receivedDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(m["internalDate"]) / 1000)),
        "from": sender, "toRecipients": [{"emailAddress": {"name": "Crumb & Co Bakery",
                                                           "address": "hello@crumb.example"}}],
        "bodyPreview": m["body"][:255], "body": {"contentType": "text", "content": m["body"]}}
    return {k: v for k, v in full.items() if k == "id" or not fields or k in fields}


def _selected() -> list[str]:
    return [f for f in (request.args.get("$select") or "").split(",") if f]


@bp.get("/microsoft/v1.0/me/messages")
def graph_messages() -> Response:
    """$search as the KQL subset the sandbox knows (words, from:, subject:), newest first, paged by $skiptoken."""
    denied = _graph_guard("Mail.Read")
    if denied:
        return denied
    query = (request.args.get("$search") or "").strip('"').replace('\\"', '"')
    found = [m for m in store().state.mailbox if _matches(m, query)]
    top, skip = int(request.args.get("$top", "10") or 10), int(request.args.get("$skiptoken", "0") or 0)
    answer: dict[str, Any] = {"value": [_graph_message(m, *_selected()) for m in found[skip:skip + top]]}
    if skip + top < len(found):
        answer["@odata.nextLink"] = f"{request.base_url}?" + urlencode(
            {"$search": request.args.get("$search", ""), "$top": top, "$skiptoken": skip + top})
    return jsonify(answer)


@bp.get("/microsoft/v1.0/me/mailFolders/inbox/messages/delta")
def graph_inbox_delta() -> Response:
    """The inbox's messages created since $deltatoken (a fresh round: those received from $filter's time on)."""
    denied = _graph_guard("Mail.ReadBasic", "Mail.Read")
    if denied:
        return denied
    state = store().state
    token = request.args.get("$deltatoken")
    if token is not None:
        if not token.isdigit() or int(token) < HISTORY_FLOOR or int(token) > state.history_id:
            return _error(410, {"error": {"code": "SyncStateNotFound",
                                          "message": "The sync state generation is not found."}})
        found = [m for m in state.mailbox if int(m.get("historyId", HISTORY_FLOOR)) > int(token)]
    else:
        floor = (request.args.get("$filter") or "").removeprefix("receivedDateTime ge ")
        try:
            floor_ms = calendar.timegm(time.strptime(floor, "%Y-%m-%dT%H:%M:%SZ")) * 1000
        except ValueError:
            return _error(400, {"error": {"code": "BadRequest", "message": "Unsupported $filter."}})
        found = [m for m in state.mailbox if int(m["internalDate"]) >= floor_ms]
    return jsonify({"value": [_graph_message(m, *_selected()) for m in reversed(found)],
                    "@odata.deltaLink": f"{request.base_url}?$deltatoken={state.history_id}"})


@bp.get("/microsoft/v1.0/me/messages/<message_id>")
def graph_message(message_id: str) -> Response:
    denied = _graph_guard("Mail.Read")
    if denied:
        return denied
    message = next((m for m in store().state.mailbox if "AAMk-" + m["id"] == message_id), None)
    if message is None:
        return _error(404, {"error": {"code": "ErrorItemNotFound",
                                      "message": "The specified object was not found in the store."}})
    return jsonify(_graph_message(message, *_selected()))


@bp.get("/microsoft/v1.0/me/calendarView")
def graph_calendar_view() -> Response:
    denied = _graph_guard("Calendars.Read", "Calendars.ReadWrite")
    if denied:
        return denied
    return jsonify(value=[{"id": "AAMkEv-" + e["id"], "subject": e["summary"], "isCancelled": False,
                           "start": {"dateTime": e["start"].get("dateTime", "").rstrip("Z"), "timeZone": "UTC"},
                           "end": {"dateTime": e["end"].get("dateTime", "").rstrip("Z"), "timeZone": "UTC"}}
                          for e in store().state.events])


@bp.post("/microsoft/v1.0/me/events")
def graph_create_event() -> Response:
    denied = _graph_guard("Calendars.ReadWrite")
    if denied:
        return denied
    body = request.get_json(silent=True) or {}
    with store().lock:
        events = store().state.events
        existing = next((e for e in events if body.get("transactionId") and e.get("transactionId")
                         == body.get("transactionId")), None)
        if existing is None:
            existing = {"id": f"ev{len(events) + 1:04d}", "summary": str(body.get("subject", "")),
                        "start": {"dateTime": str((body.get("start") or {}).get("dateTime", "")) + "Z"},
                        "end": {"dateTime": str((body.get("end") or {}).get("dateTime", "")) + "Z"},
                        "status": "confirmed", "created_by_hapex": True,
                        "transactionId": body.get("transactionId")}
            events.append(existing)
            store().state.count("microsoft.events.create")
            store().save()
    response = jsonify(id="AAMkEv-" + existing["id"], subject=existing["summary"])
    response.status_code = 201
    return response


@bp.patch("/notion/v1/blocks/<page_id>/children")
def notion_append(page_id: str) -> Response:
    if oauth.bearer_access("notion") is None:
        return _error(401, {"object": "error", "status": 401, "code": "unauthorized",
                            "message": "API token is invalid."})
    if page_id.replace("-", "") != NOTION_PAGE_ID.replace("-", ""):
        return _error(404, {"object": "error", "status": 404, "code": "object_not_found",
                            "message": "Could not find block."})
    children = (request.get_json(silent=True) or {}).get("children") or []
    with store().lock:
        blocks = store().state.notion_blocks
        made = []
        for child in children:
            block = {"object": "block", "id": f"b10c{len(blocks) + 1:04d}-0000-4000-8000-000000000000",
                     "type": child.get("type", "paragraph"), "paragraph": child.get("paragraph", {})}
            blocks.append(block)
            made.append(block)
        store().state.count("notion.blocks.append")
        store().save()
    return jsonify(object="list", results=made)


def _hubspot_reader() -> Response | None:
    """401 without a live HubSpot token, 403 without the contacts read scope."""
    access = oauth.bearer_access("hubspot")
    if access is None:
        return _error(401, {"status": "error", "category": "INVALID_AUTHENTICATION", "message": "Authentication "
                            "credentials not found."})
    if "crm.objects.contacts.read" not in access.scopes:
        return _error(403, {"status": "error", "category": "MISSING_SCOPES", "message": "This app hasn't been "
                            "granted all required scopes."})
    return None


def _as_found(contact: dict[str, Any]) -> dict[str, Any]:
    created = str(int(contact["created_at"] * 1000))
    return {"id": contact["id"], "properties": {**contact["properties"], "createdate": created,
                                                "hs_object_id": contact["id"]}, "archived": False}


@bp.post("/hubspot/crm/v3/objects/contacts/search")
def hubspot_search() -> Response:
    """CRM search as polls use it: a createdate GTE filter, sorted by createdate, paged by `after`."""
    denied = _hubspot_reader()
    if denied:
        return denied
    body = request.get_json(silent=True) or {}
    floor = 0
    for group in body.get("filterGroups") or []:
        for f in group.get("filters") or []:
            if f.get("propertyName") == "createdate" and f.get("operator") == "GTE":
                floor = int(f.get("value") or 0)
    found = sorted((_as_found(c) for c in store().state.contacts), key=lambda c: int(c["properties"]["createdate"]))
    found = [c for c in found if int(c["properties"]["createdate"]) >= floor]
    sorts = body.get("sorts") or []
    if sorts and sorts[0].get("direction") == "DESCENDING":
        found.reverse()
    start, limit = int(body.get("after") or 0), min(int(body.get("limit") or 10), 200)
    answer: dict[str, Any] = {"total": len(found), "results": found[start:start + limit]}
    if start + limit < len(found):
        answer["paging"] = {"next": {"after": str(start + limit)}}
    return jsonify(answer)


@bp.get("/hubspot/crm/v3/objects/contacts/<contact_id>")
def hubspot_get_contact(contact_id: str) -> Response:
    denied = _hubspot_reader()
    if denied:
        return denied
    contact = next((c for c in store().state.contacts if c["id"] == contact_id), None)
    if contact is None:
        return _error(404, {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Object not found."})
    return jsonify(_as_found(contact))


@bp.post("/hubspot/crm/v3/objects/contacts")
def hubspot_contact() -> Response:
    access = oauth.bearer_access("hubspot")
    if access is None:
        return _error(401, {"status": "error", "category": "INVALID_AUTHENTICATION", "message": "Authentication "
                            "credentials not found."})
    if "crm.objects.contacts.write" not in access.scopes:
        return _error(403, {"status": "error", "category": "MISSING_SCOPES", "message": "This app hasn't been "
                            "granted all required scopes."})
    properties = (request.get_json(silent=True) or {}).get("properties") or {}
    with store().lock:
        contacts = store().state.contacts
        if any(c["properties"].get("email") == properties.get("email") for c in contacts):
            return _error(409, {"status": "error", "category": "CONFLICT", "message": "Contact already exists."})
        contact = {"id": str(1000 + len(contacts) + 1), "properties": properties, "created_at": time.time()}
        contacts.append(contact)
        store().state.count("hubspot.contacts.create")
        store().save()
    response = jsonify(id=contact["id"], properties=properties)
    response.status_code = 201
    return response
