"""Google-shaped APIs: exactly the Gmail, Sheets, Calendar and Drive calls Hapex's capabilities and polls make.

Polls ("when something new arrives") read Gmail's profile and history (a history id older than the
sample mail is answered 404, as Gmail does for one it no longer keeps), a sheet's rows, and Calendar's
events with sync tokens (one it cannot read is answered 410 Gone). The sandbox's own pages deliver a new
email, add a row and add an event, so that a poll has something new to find on `make run`.

Each answers only a live sandbox access token for Google whose scopes cover the call (a
read-only token gets 403 on a write), with Google's error shape.
"""

from __future__ import annotations

import base64
import email
import re
import time
from email import policy
from typing import Any

from flask import Blueprint, Response, jsonify, request

from hapex.sandbox import oauth
from hapex.sandbox.state import SPREADSHEET_ID, encoded_body, rfc3339
from hapex.sandbox.views import store

bp = Blueprint("google", __name__, url_prefix="/google")
G = "https://www.googleapis.com/auth/"
DRIVE_FILE_ID = "sandbox-file-price-list"
DRIVE_FILE = {"id": DRIVE_FILE_ID, "name": "Price list 2026.txt", "mimeType": "text/plain",
              "text": "Croissant 1.80\nSourdough loaf 4.50\nChocolate cake (12) 45.00\n"}


def _error(status: int, reason: str, message: str) -> Response:
    response = jsonify(error={"code": status, "message": message, "status": reason.upper(),
                              "errors": [{"reason": reason, "message": message}]})
    response.status_code = status
    return response


def _guard(*any_of: str) -> Response | None:
    """401 without a live token, 403 when its scopes include none of any_of."""
    access = oauth.bearer_access("google")
    if access is None:
        return _error(401, "authError", "Request had invalid authentication credentials.")
    if not access.scopes & set(any_of):
        return _error(403, "insufficientPermissions", "Request had insufficient authentication scopes.")
    return None


def _matches(message: dict[str, Any], query: str) -> bool:
    """A small Gmail search: every term must appear (subject:, from: narrow it; a plural finds its singular)."""
    for term in re.findall(r'(?:\w+:)?"[^"]*"|\S+', query.lower().replace("(", " ").replace(")", " ")):
        field, _, value = term.partition(":") if ":" in term else ("", "", term)
        value = value.strip('"')
        if field == "after" and value.isdigit():
            if int(message["internalDate"]) // 1000 <= int(value):
                return False
            continue
        if field in ("newer_than", "older_than", "is", "in", "label", "has"):
            continue
        haystack = {"subject": message["subject"], "from": message["from"]}.get(
            field, f"{message['subject']} {message['from']} {message['body']}").lower()
        stem = value[:-1] if value.endswith("s") and len(value) > 3 else value
        if stem not in haystack:
            return False
    return True


@bp.get("/gmail/v1/users/me/messages")
def gmail_list() -> Response:
    query = request.args.get("q")
    # Gmail refuses a search on a metadata-only token.
    denied = _guard(G + "gmail.readonly") if query else _guard(G + "gmail.readonly", G + "gmail.metadata")
    if denied:
        return denied
    labels = set(request.args.getlist("labelIds"))
    limit = min(int(request.args.get("maxResults", "100") or 100), 500)
    with store().lock:
        found = [m for m in store().state.mailbox
                 if (not query or _matches(m, query)) and labels <= set(m["labelIds"])][:limit]
        store().state.count("google.gmail.list")
    answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
    if found:
        answer["messages"] = [{"id": m["id"], "threadId": m["threadId"]} for m in found]
    return jsonify(answer)


# The history id of the sample mail: an older start is one Gmail no longer keeps (404).
HISTORY_FLOOR = 1000


@bp.get("/gmail/v1/users/me/profile")
def gmail_profile() -> Response:
    denied = _guard(G + "gmail.readonly", G + "gmail.metadata")
    if denied:
        return denied
    state = store().state
    return jsonify(emailAddress="owner@bakery.example", messagesTotal=len(state.mailbox),
                   threadsTotal=len(state.mailbox), historyId=str(state.history_id))


@bp.get("/gmail/v1/users/me/history")
def gmail_history() -> Response:
    """users.history.list: the messages added after startHistoryId, oldest first."""
    denied = _guard(G + "gmail.readonly", G + "gmail.metadata")
    if denied:
        return denied
    start = request.args.get("startHistoryId", "")
    if not start.isdigit():
        return _error(400, "invalidArgument", "Invalid startHistoryId.")
    if int(start) < HISTORY_FLOOR:
        return _error(404, "notFound", "Requested entity was not found.")
    with store().lock:
        added = sorted((m for m in store().state.mailbox if int(m.get("historyId", 0)) > int(start)),
                       key=lambda m: int(m["historyId"]))
        store().state.count("google.gmail.history")
        current = store().state.history_id
    records = [{"id": str(m["historyId"]), "messages": [{"id": m["id"], "threadId": m["threadId"]}],
                "messagesAdded": [{"message": {"id": m["id"], "threadId": m["threadId"], "labelIds": m["labelIds"]}}]}
               for m in added]
    answer: dict[str, Any] = {"historyId": str(current)}
    if records:
        answer["history"] = records
    return jsonify(answer)


ARRIVING = [
    ("Bakehouse Supplies <billing@bakehouse.example>", "Invoice BS-{n} for baking paper",
     "Invoice BS-{n}: 20 rolls of baking paper.\nTotal due: EUR 96.00 within 14 days.\n"),
    ("Sam Keller <sam@example.org>", "Order for Friday",
     "Hello, could I order two sourdough loaves for Friday morning? Sam"),
]


def deliver_sample_email() -> dict[str, Any]:
    """A new email arrives at the top of the mailbox, one history id later (the sandbox page's button)."""
    with store().lock:
        state = store().state
        state.history_id += 1
        sender, subject, body = ARRIVING[state.history_id % len(ARRIVING)]
        number = state.history_id
        message = {"id": f"m-{number:04d}", "threadId": f"t-{number:04d}", "from": sender,
                   "subject": subject.format(n=number), "body": body.format(n=number),
                   "internalDate": str(int(time.time() * 1000)), "labelIds": ["INBOX", "UNREAD"],
                   "historyId": number}
        state.mailbox.insert(0, message)
        state.count("google.gmail.arrived")
        store().save()
    return message


@bp.get("/gmail/v1/users/me/messages/<message_id>")
def gmail_get(message_id: str) -> Response:
    detail = request.args.get("format", "full")
    denied = _guard(G + "gmail.readonly") if detail != "metadata" else \
        _guard(G + "gmail.readonly", G + "gmail.metadata")
    if denied:
        return denied
    message = next((m for m in store().state.mailbox if m["id"] == message_id), None)
    if message is None:
        return _error(404, "notFound", "Requested entity was not found.")
    headers = [{"name": "From", "value": message["from"]}, {"name": "Subject", "value": message["subject"]},
               {"name": "Date", "value": time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                       time.gmtime(int(message["internalDate"]) / 1000))}]
    if detail == "metadata":
        wanted = {h.lower() for h in request.args.getlist("metadataHeaders")}
        headers = [h for h in headers if not wanted or h["name"].lower() in wanted]
        payload: dict[str, Any] = {"mimeType": "text/plain", "headers": headers}
    else:
        payload = {"mimeType": "multipart/alternative", "headers": headers, "parts": [
            {"mimeType": "text/plain", "headers": [{"name": "Content-Type", "value": "text/plain; charset=UTF-8"}],
             "body": {"size": len(message["body"]), "data": encoded_body(message["body"])}}]}
    with store().lock:
        store().state.count("google.gmail.get")
    return jsonify(id=message["id"], threadId=message["threadId"], labelIds=message["labelIds"],
                   snippet=message["body"][:100], internalDate=message["internalDate"], payload=payload)


@bp.post("/gmail/v1/users/me/drafts")
def gmail_draft() -> Response:
    denied = _guard(G + "gmail.compose")
    if denied:
        return denied
    raw = ((request.get_json(silent=True) or {}).get("message") or {}).get("raw")
    if not isinstance(raw, str):
        return _error(400, "invalidArgument", "Missing draft message.")
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), policy=policy.default)
    body = parsed.get_body(preferencelist=("plain",))
    with store().lock:
        draft_id = f"r-{len(store().state.drafts) + 1:04d}"
        store().state.drafts.append({"id": draft_id, "to": str(parsed["To"] or ""), "subject": str(parsed["Subject"]
                                     or ""), "body": body.get_content() if body else "", "created_at": time.time()})
        store().state.count("google.gmail.draft")
        store().save()
    return jsonify(id=draft_id, message={"id": "m-" + draft_id, "threadId": "t-" + draft_id, "labelIds": ["DRAFT"]})


def _values_range(rest: str) -> tuple[str, bool]:
    return (rest[: -len(":append")], True) if rest.endswith(":append") else (rest, False)


@bp.route("/v4/spreadsheets/<spreadsheet_id>/values/<path:rest>", methods=["GET", "POST"])
def sheets_values(spreadsheet_id: str, rest: str) -> Response:
    cell_range, appending = _values_range(rest)
    if appending != (request.method == "POST"):
        return _error(404, "notFound", "Requested entity was not found.")
    denied = _guard(G + "spreadsheets") if appending else _guard(G + "spreadsheets", G + "spreadsheets.readonly")
    if denied:
        return denied
    if spreadsheet_id != SPREADSHEET_ID:
        return _error(404, "notFound", "Requested entity was not found.")
    sheet = store().state.sheet
    if not appending:
        rows = sheet["rows"]
        only = re.search(r"!(\d+):(\d+)$", cell_range)  # a poll's row range, like 'Sheet1'!3:3
        if only:
            rows = rows[int(only.group(1)) - 1:int(only.group(2))]
        answer: dict[str, Any] = {"range": cell_range, "majorDimension": "ROWS"}
        if rows:
            answer["values"] = rows
        return jsonify(answer)
    rows = (request.get_json(silent=True) or {}).get("values")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        return _error(400, "invalidArgument", "Invalid values.")
    with store().lock:
        first = len(sheet["rows"]) + 1
        sheet["rows"].extend([["" if v is None else str(v) for v in row] for row in rows])
        store().state.count("google.sheets.append")
        store().save()
    width = max((len(r) for r in rows), default=0)
    return jsonify(spreadsheetId=spreadsheet_id, tableRange=cell_range, updates={
        "spreadsheetId": spreadsheet_id, "updatedRange": f"Sheet1!A{first}:{chr(64 + max(width, 1))}"
        f"{first + len(rows) - 1}", "updatedRows": len(rows), "updatedColumns": width,
        "updatedCells": sum(len(r) for r in rows)})


@bp.route("/calendar/v3/calendars/<calendar_id>/events", methods=["GET", "POST"])
def calendar_events(calendar_id: str) -> Response:
    write = request.method == "POST"
    denied = _guard(G + "calendar.events") if write else _guard(G + "calendar.events", G + "calendar.events.readonly")
    if denied:
        return denied
    if calendar_id != "primary":
        return _error(404, "notFound", "Not Found")
    events = store().state.events
    if not write:
        sync_token = request.args.get("syncToken")
        if sync_token is not None:
            # events.list with a sync token: what was added since (the sandbox only adds), and the next token.
            if not re.fullmatch(r"sync-\d+", sync_token) or int(sync_token[5:]) > len(events):
                return _error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            return jsonify(kind="calendar#events", items=events[int(sync_token[5:]):],
                           nextSyncToken=f"sync-{len(events)}")
        items = sorted(events, key=lambda e: e["start"].get("dateTime", ""))
        return jsonify(kind="calendar#events", items=items[: int(request.args.get("maxResults", "250") or 250)],
                       nextSyncToken=f"sync-{len(events)}")
    body = request.get_json(silent=True) or {}
    with store().lock:
        if any(e["id"] == body.get("id") for e in events):
            return _error(409, "duplicate", "The requested identifier already exists.")
        event = {"id": str(body.get("id") or f"ev{len(events) + 1:04d}"), "summary": str(body.get("summary", "")),
                 "description": str(body.get("description", "")), "start": body.get("start") or {},
                 "end": body.get("end") or {}, "status": "confirmed", "created_by_hapex": True,
                 "created": rfc3339(time.time())}
        events.append(event)
        store().state.count("google.calendar.create")
        store().save()
    return jsonify(event)


@bp.get("/calendar/v3/calendars/<calendar_id>/events/<event_id>")
def calendar_event(calendar_id: str, event_id: str) -> Response:
    denied = _guard(G + "calendar.events", G + "calendar.events.readonly")
    if denied:
        return denied
    event = next((e for e in store().state.events if e["id"] == event_id), None)
    if calendar_id != "primary" or event is None:
        return _error(404, "notFound", "Not Found")
    return jsonify(event)


@bp.get("/drive/v3/files/<file_id>")
def drive_file(file_id: str) -> Response:
    denied = _guard(G + "drive.file")
    if denied:
        return denied
    if file_id != DRIVE_FILE_ID:
        return _error(404, "notFound", f"File not found: {file_id}.")
    if request.args.get("alt") == "media":
        return Response(DRIVE_FILE["text"], mimetype="text/plain")
    return jsonify(id=file_id, name=DRIVE_FILE["name"], mimeType=DRIVE_FILE["mimeType"],
                   size=str(len(DRIVE_FILE["text"].encode())))
