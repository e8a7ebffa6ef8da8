"""What each poll source asks its provider: the cursor now, the new items since a cursor, one item's fields.

A poll learns ids only (a Gmail message id, a row's number and its count's generation, a Calendar event
id) and moves the provider's cursor on; a run reads its own item's fields when it starts. Nothing here
keeps an item's contents beyond the call that read it.

- Gmail: users.getProfile's historyId is the cursor; users.history.list (startHistoryId,
  historyTypes=messageAdded) lists what arrived, and users.messages.list with the client's search
  (q, after: the last poll) says which of those match. A history id Gmail no longer keeps is answered
  404: then the search alone, over the time since the last poll, finds them (developers.google.com/
  workspace/gmail/api/guides/sync, "partial synchronization").
- Sheets: the number of rows of the sheet (spreadsheets.values.get); rows past it are new. Rows removed
  start a new generation of the count, so a row added again at a number seen before is new.
- HubSpot: the newest contact's createdate (CRM search, sorted by createdate); contacts created since
  (less a margin for the search index's lag, the seen keys dropping what already ran) are new.
- Calendar: events.list's nextSyncToken; a token Google no longer accepts is answered 410 Gone, and a
  full list (a fresh token) replaces it (developers.google.com/calendar/api/guides/sync).
- Outlook: Microsoft Graph's inbox delta (me/mailFolders/inbox/messages/delta, changeType=created):
  the @odata.deltaLink is the cursor, @odata.nextLink pages are followed. The delta cannot take a
  $search, so the client's search (me/messages?$search) says which new ids match, as for Gmail. A
  delta token Graph no longer keeps (410 Gone, or syncStateNotFound) is replaced by a fresh round from
  the last poll on (less LOOK_BACK), whose messages are new unless seen (learn.microsoft.com/graph/
  delta-query-messages, api/message-delta).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    StepContext,
    StepFailed,
    check_status,
    path_segment,
    response_json,
)
from agent_service.capabilities.google_api import api_root, google_json, google_request
from agent_service.capabilities.google_calendar import _events_path
from agent_service.capabilities.google_gmail import GMAIL, body_text
from agent_service.capabilities.google_sheets import SHEETS_ROOT
from agent_service.capabilities.microsoft import address, kql_search
from shared.secret import Secret

# Pages a poll reads at most from one provider listing; what is beyond waits for the next poll.
MAX_PAGES = 20
# A search after a reset looks back this far before the last poll (clocks, Gmail's indexing delay).
LOOK_BACK = timedelta(hours=1)


class ItemGone(StepFailed):
    """The new item was removed at the provider before its run read it."""

    error_class = "trigger_item_gone"
    safe_message = "The new item was removed before this run could read it."


@dataclass
class PollAnswer:
    """The cursor to keep and the new items' keys, oldest first (some may have been seen already)."""

    cursor: dict[str, Any]
    items: list[str] = field(default_factory=list)
    # The provider refused the cursor (Gmail 404, Calendar 410) and the poll fell back.
    reset: bool = False


@dataclass(frozen=True)
class Source:
    prime: Callable[[StepContext, Secret, Mapping[str, Any]], dict[str, Any]]
    poll: Callable[[StepContext, Secret, Mapping[str, Any], Mapping[str, Any], datetime, datetime], PollAnswer]
    item: Callable[[StepContext, Secret, Mapping[str, Any], str], dict[str, Any]]


def _object(answer: Any, provider: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise OutputInvalid(f"{provider} answered with something unexpected.")
    return answer


# --- Gmail -------------------------------------------------------------------------------------


def gmail_prime(ctx: StepContext, token: Secret, options: Mapping[str, Any]) -> dict[str, Any]:
    profile = _object(google_json(ctx, "GET", f"{GMAIL}/profile", token), "Gmail")
    if not str(profile.get("historyId", "")).isdigit():
        raise OutputInvalid("Gmail answered without a history id.")
    return {"history_id": str(profile["historyId"])}


def gmail_poll(ctx: StepContext, token: Secret, options: Mapping[str, Any], cursor: Mapping[str, Any],
               since: datetime, primed_at: datetime) -> PollAnswer:
    start = str(cursor.get("history_id", ""))
    added: list[str] = []
    last = start
    params: dict[str, Any] = {"startHistoryId": start, "historyTypes": "messageAdded", "maxResults": 500}
    for _ in range(MAX_PAGES):
        response = google_request(ctx, "GET", f"{GMAIL}/history", token, params=params, tolerate=frozenset({404}))
        if response.status_code == 404:
            return _gmail_reset(ctx, token, options, since)
        answer = _object(response_json(ctx.http.provider, response), "Gmail")
        for record in answer.get("history") or []:
            if not isinstance(record, dict):
                continue
            for entry in record.get("messagesAdded") or []:
                message = entry.get("message") if isinstance(entry, dict) else None
                if isinstance(message, dict) and "id" in message and "DRAFT" not in (message.get("labelIds") or []):
                    added.append(str(message["id"]))
            if str(record.get("id", "")).isdigit():
                last = str(record["id"])
        if not answer.get("nextPageToken"):
            last = str(answer.get("historyId") or last)
            break
        params["pageToken"] = answer["nextPageToken"]
    # Beyond MAX_PAGES the cursor stops at the last record read; the next poll carries on from it.
    if not added:
        return PollAnswer({"history_id": last})
    matching = set(_gmail_search(ctx, token, options, since - LOOK_BACK))
    return PollAnswer({"history_id": last}, [m for m in dict.fromkeys(added) if m in matching])


def _gmail_search(ctx: StepContext, token: Secret, options: Mapping[str, Any], after: datetime) -> list[str]:
    """The ids of messages matching the client's search received after `after`, oldest first."""
    query = f"({options.get('query') or 'in:inbox'}) after:{int(after.timestamp())}"
    params: dict[str, Any] = {"q": query, "maxResults": 500}
    found: list[str] = []
    for _ in range(MAX_PAGES):
        answer = _object(google_json(ctx, "GET", f"{GMAIL}/messages", token, params=params), "Gmail")
        found += [str(m["id"]) for m in answer.get("messages") or [] if isinstance(m, dict) and "id" in m]
        if not answer.get("nextPageToken"):
            break
        params["pageToken"] = answer["nextPageToken"]
    found.reverse()  # Gmail lists newest first
    return found


def _gmail_reset(ctx: StepContext, token: Secret, options: Mapping[str, Any], since: datetime) -> PollAnswer:
    """The history id is too old (404): a fresh one first, then the search over the time since the last poll."""
    cursor = gmail_prime(ctx, token, options)
    return PollAnswer(cursor, _gmail_search(ctx, token, options, since - LOOK_BACK), reset=True)


def gmail_item(ctx: StepContext, token: Secret, options: Mapping[str, Any], key: str) -> dict[str, Any]:
    response = google_request(ctx, "GET", f"{GMAIL}/messages/{path_segment(key, 'Gmail message id')}", token,
                              params={"format": "full"}, tolerate=frozenset({404}))
    if response.status_code == 404:
        raise ItemGone("The new email was deleted from Gmail before this run could read it.")
    message = _object(response_json(ctx.http.provider, response), "Gmail")
    payload: dict[str, Any] = message["payload"] if isinstance(message.get("payload"), dict) else {}
    headers: dict[str, str] = {}
    for header in payload.get("headers") or []:
        if isinstance(header, dict) and isinstance(header.get("name"), str):
            headers.setdefault(header["name"].lower(), str(header.get("value", "")))
    return {"email": {"id": str(message.get("id", key)), "thread_id": str(message.get("threadId", "")),
                      "from": headers.get("from", ""), "to": headers.get("to", ""),
                      "subject": headers.get("subject", ""), "date": headers.get("date", ""),
                      "snippet": str(message.get("snippet", "")), "body_text": body_text(payload)}}


# --- Sheets ------------------------------------------------------------------------------------


def _sheet_values(ctx: StepContext, token: Secret, options: Mapping[str, Any], a1: str) -> list[list[Any]]:
    sheet_range = f"'{options.get('sheet') or 'Sheet1'}'{a1}"
    spreadsheet = path_segment(options["spreadsheet_id"], "spreadsheet id")
    url = f"{api_root(ctx, SHEETS_ROOT)}/v4/spreadsheets/{spreadsheet}/values/{path_segment(sheet_range, 'range')}"
    answer = _object(google_json(ctx, "GET", url, token, params={"majorDimension": "ROWS",
                                                                 "valueRenderOption": "FORMATTED_VALUE"}),
                     "Google Sheets")
    rows = answer.get("values", [])  # absent when the range is empty
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise OutputInvalid("Google Sheets answered with an unexpected range.")
    return rows


def _row_key(number: int, generation: int) -> str:
    """The row's number and the count's generation, nothing of its cells (a hash of them would let a dump
    confirm a guessed row): rows removed start a new generation, so one added again at a number is new."""
    return f"row:{number}:g{generation}"


def sheets_prime(ctx: StepContext, token: Secret, options: Mapping[str, Any]) -> dict[str, Any]:
    return {"rows": len(_sheet_values(ctx, token, options, ""))}


def sheets_poll(ctx: StepContext, token: Secret, options: Mapping[str, Any], cursor: Mapping[str, Any],
                since: datetime, primed_at: datetime) -> PollAnswer:
    rows = _sheet_values(ctx, token, options, "")
    counted = int(cursor.get("rows", 0))
    generation = int(cursor.get("generation", 0))
    if len(rows) < counted:  # rows were removed: count again from here, nothing is new
        return PollAnswer({"rows": len(rows), "generation": generation + 1}, reset=True)
    return PollAnswer({"rows": len(rows), "generation": generation},
                      [_row_key(number, generation) for number in range(counted + 1, len(rows) + 1)])


def sheets_item(ctx: StepContext, token: Secret, options: Mapping[str, Any], key: str) -> dict[str, Any]:
    try:
        number = int(key.split(":")[1])
    except (IndexError, ValueError):
        raise OutputInvalid("The new row's number is not readable.") from None
    header = _sheet_values(ctx, token, options, "!1:1")
    cells = _sheet_values(ctx, token, options, f"!{number}:{number}")
    if not cells:
        raise ItemGone("The new row was emptied or removed before this run could read it.")
    values = [str(value) for value in cells[0]]
    names = [str(value) for value in header[0]] if header else []
    row: dict[str, str] = {}
    for index, value in enumerate(values):
        name = column_field(names[index]) if index < len(names) else ""
        row.setdefault(name or _column_letter(index).lower(), value)
    return {"row_number": number, "row": row, "values": values}


def column_field(header: str) -> str:
    """A column's name as a field (Email address → email_address): lowercase letters, digits and _."""
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")[:40]
    return name if re.match(r"^[a-z_]", name) else ""


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# --- Calendar ----------------------------------------------------------------------------------


def _calendar_list(ctx: StepContext, token: Secret, options: Mapping[str, Any],
                   sync_token: str | None) -> tuple[list[dict[str, Any]], str, bool]:
    """Every changed event (or, without a token, every event from yesterday on) and the next sync token;
    the last value says the token was refused (410 Gone)."""
    params: dict[str, Any] = {"maxResults": 250}
    if sync_token:
        params["syncToken"] = sync_token
    else:
        params["timeMin"] = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES * 2):
        response = google_request(ctx, "GET", _events_path(options.get("calendar_id") or "primary"), token,
                                  params=params, tolerate=frozenset({410}))
        if response.status_code == 410:
            return [], "", True
        answer = _object(response_json(ctx.http.provider, response), "Google Calendar")
        items += [item for item in answer.get("items") or [] if isinstance(item, dict) and "id" in item]
        if answer.get("nextSyncToken"):
            return items, str(answer["nextSyncToken"]), False
        if not answer.get("nextPageToken"):
            break
        params["pageToken"] = answer["nextPageToken"]
    raise OutputInvalid("Google Calendar answered without a sync token.")


def _created(item: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(item.get("created", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


def calendar_prime(ctx: StepContext, token: Secret, options: Mapping[str, Any]) -> dict[str, Any]:
    _, sync_token, _gone = _calendar_list(ctx, token, options, None)
    return {"sync_token": sync_token}


def calendar_poll(ctx: StepContext, token: Secret, options: Mapping[str, Any], cursor: Mapping[str, Any],
                  since: datetime, primed_at: datetime) -> PollAnswer:
    """Events created since the state was taken (an older event that changed is not new); after a 410, a
    full list, of which the events created since the last poll are new."""
    items, sync_token, gone = _calendar_list(ctx, token, options, str(cursor.get("sync_token") or "") or None)
    after = primed_at
    if gone:
        items, sync_token, _gone = _calendar_list(ctx, token, options, None)
        after = since - LOOK_BACK
    new = []
    for item in items:
        created = _created(item)
        if item.get("status") != "cancelled" and created is not None and created >= after:
            new.append((created, str(item["id"])))
    new.sort()
    return PollAnswer({"sync_token": sync_token}, [event_id for _, event_id in new], reset=gone)


def _when(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("dateTime") or value.get("date") or "")
    return ""


def calendar_item(ctx: StepContext, token: Secret, options: Mapping[str, Any], key: str) -> dict[str, Any]:
    path = f"{_events_path(options.get('calendar_id') or 'primary')}/{path_segment(key, 'event id')}"
    response = google_request(ctx, "GET", path, token, tolerate=frozenset({404, 410}))
    if response.status_code in (404, 410):
        raise ItemGone("The new event was deleted before this run could read it.")
    event = _object(response_json(ctx.http.provider, response), "Google Calendar")
    if event.get("status") == "cancelled":
        raise ItemGone("The new event was cancelled before this run could read it.")
    organizer: dict[str, Any] = event["organizer"] if isinstance(event.get("organizer"), dict) else {}
    return {"event": {"id": str(event.get("id", key)), "summary": str(event.get("summary", "")),
                      "description": str(event.get("description", "")), "location": str(event.get("location", "")),
                      "start": _when(event.get("start")), "end": _when(event.get("end")),
                      "organizer": str(organizer.get("email", "")), "link": str(event.get("htmlLink", ""))}}


# --- HubSpot ------------------------------------------------------------------------------------

CONTACTS = "crm/v3/objects/contacts"
# HubSpot's search index may show a new contact some seconds late: each poll looks back this far.
INDEX_LAG_MS = 5 * 60 * 1000


def _contacts_search(ctx: StepContext, token: Secret, body: dict[str, Any]) -> dict[str, Any]:
    response = ctx.http.request("POST", f"{CONTACTS}/search", token=token, check=False, json=body)
    check_status(ctx.http.provider, response)
    return _object(response_json(ctx.http.provider, response), "HubSpot")


def _created_ms(contact: Mapping[str, Any]) -> int | None:
    value = str((contact.get("properties") or {}).get("createdate") or "")
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def hubspot_prime(ctx: StepContext, token: Secret, options: Mapping[str, Any]) -> dict[str, Any]:
    answer = _contacts_search(ctx, token, {"sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
                                           "properties": ["createdate"], "limit": 1})
    newest = [_created_ms(c) for c in answer.get("results") or [] if isinstance(c, dict)]
    return {"created_ms": str(newest[0] if newest and newest[0] is not None else int(time.time() * 1000))}


def hubspot_poll(ctx: StepContext, token: Secret, options: Mapping[str, Any], cursor: Mapping[str, Any],
                 since: datetime, primed_at: datetime) -> PollAnswer:
    """Contacts created at or after the cursor (less the index lag), oldest first; never one created before
    the state was taken."""
    after_ms = max(int(cursor.get("created_ms", 0)) - INDEX_LAG_MS, int(primed_at.timestamp() * 1000))
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": "createdate", "operator": "GTE", "value": str(after_ms)}]}],
        "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}], "properties": ["createdate"],
        "limit": 100}
    found: list[tuple[int, str]] = []
    for _ in range(MAX_PAGES):
        answer = _contacts_search(ctx, token, body)
        for contact in answer.get("results") or []:
            created = _created_ms(contact) if isinstance(contact, dict) else None
            if created is not None and "id" in contact:
                found.append((created, str(contact["id"])))
        following = ((answer.get("paging") or {}).get("next") or {}).get("after")
        if not following:
            break
        body["after"] = str(following)
    newest = max([created for created, _ in found], default=int(cursor.get("created_ms", 0)))
    return PollAnswer({"created_ms": str(newest)}, [contact_id for _, contact_id in sorted(found)])


def hubspot_item(ctx: StepContext, token: Secret, options: Mapping[str, Any], key: str) -> dict[str, Any]:
    response = ctx.http.request("GET", f"{CONTACTS}/{path_segment(key, 'contact id')}", token=token, check=False,
                                params={"properties": "email,firstname,lastname,company,createdate"})
    if response.status_code == 404:
        raise ItemGone("The new contact was deleted from HubSpot before this run could read it.")
    check_status(ctx.http.provider, response)
    contact = _object(response_json(ctx.http.provider, response), "HubSpot")
    properties: dict[str, Any] = contact["properties"] if isinstance(contact.get("properties"), dict) else {}
    return {"contact": {"id": str(contact.get("id", key)), "email": str(properties.get("email") or ""),
                        "first_name": str(properties.get("firstname") or ""),
                        "last_name": str(properties.get("lastname") or ""),
                        "company": str(properties.get("company") or ""),
                        "created_at": str(properties.get("createdate") or "")}}


# --- Outlook ------------------------------------------------------------------------------------

INBOX_DELTA = "me/mailFolders/inbox/messages/delta"
# Graph's error codes for a delta or skip token it no longer keeps (besides 410 Gone).
RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
# Messages per delta or search page (Prefer: odata.maxpagesize; Graph's default is 10).
GRAPH_PAGE = {"Prefer": "odata.maxpagesize=50"}


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_link(ctx: StepContext, link: Any) -> str | None:
    """A nextLink or deltaLink, only if it is on Graph itself: the access token goes with it."""
    return link if isinstance(link, str) and link.startswith(ctx.http.url("")) else None


def _graph_code(response: Any) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error.get("code") or "").lower() if isinstance(error, dict) else ""


def _inbox_delta(ctx: StepContext, token: Secret, link: str | None,
                 after: datetime) -> tuple[list[tuple[str, str]], str, bool]:
    """The inbox's new messages from a delta link (without one, a fresh round of those received from
    `after` on): (received, id) pairs, the link to keep, and whether Graph refused the link."""
    url = link or INBOX_DELTA
    params: dict[str, Any] | None = None if link else {
        "changeType": "created", "$select": "id,receivedDateTime",
        "$filter": f"receivedDateTime ge {_graph_time(after)}"}
    found: list[tuple[str, str]] = []
    for _ in range(MAX_PAGES):
        response = ctx.http.request("GET", url, token=token, check=False, headers=GRAPH_PAGE, params=params)
        if response.status_code == 410 or (response.status_code in (400, 404)
                                           and _graph_code(response) in RESYNC_CODES):
            return [], "", True
        check_status(ctx.http.provider, response)
        answer = _object(response_json(ctx.http.provider, response), "Microsoft Graph")
        for item in answer.get("value") or []:
            if isinstance(item, dict) and "id" in item and "@removed" not in item:
                found.append((str(item.get("receivedDateTime") or ""), str(item["id"])))
        delta = _graph_link(ctx, answer.get("@odata.deltaLink"))
        if delta:
            return found, delta, False
        following = _graph_link(ctx, answer.get("@odata.nextLink"))
        if not following:
            raise OutputInvalid("Microsoft Graph answered without a delta link.")
        url, params = following, None
    # Beyond MAX_PAGES the cursor is the next page's link; the next poll carries on from it.
    return found, url, False


def _outlook_search(ctx: StepContext, token: Secret, query: str, wanted: set[str], oldest: str) -> set[str]:
    """Which of `wanted` match the client's search: Graph lists matches newest first, so the pages stop
    once all are found or the matches are older than the oldest new email (less LOOK_BACK)."""
    try:
        floor = _graph_time(datetime.fromisoformat(oldest.replace("Z", "+00:00")) - LOOK_BACK)
    except ValueError:
        floor = ""
    url = "me/messages"
    params: dict[str, Any] | None = {"$search": kql_search(query), "$select": "id,receivedDateTime", "$top": 50}
    matching: set[str] = set()
    for _ in range(MAX_PAGES):
        answer = _object(ctx.http.json("GET", url, token=token, params=params), "Microsoft Graph")
        values = [item for item in answer.get("value") or [] if isinstance(item, dict) and "id" in item]
        matching |= {str(item["id"]) for item in values} & wanted
        following = _graph_link(ctx, answer.get("@odata.nextLink"))
        if matching == wanted or not following or not values or \
                str(values[-1].get("receivedDateTime") or "") < floor:
            break
        url, params = following, None
    return matching


def outlook_prime(ctx: StepContext, token: Secret, options: Mapping[str, Any]) -> dict[str, Any]:
    """A delta round of the messages received from now on: nothing yet, and the link to ask from."""
    _, link, _gone = _inbox_delta(ctx, token, None, datetime.now(UTC))
    return {"delta_link": link}


def outlook_poll(ctx: StepContext, token: Secret, options: Mapping[str, Any], cursor: Mapping[str, Any],
                 since: datetime, primed_at: datetime) -> PollAnswer:
    link = _graph_link(ctx, cursor.get("delta_link"))
    found, following, gone = _inbox_delta(ctx, token, link, primed_at) if link else ([], "", True)
    if gone:  # a full round from the last poll on (the seen keys drop those that ran already)
        found, following, _gone = _inbox_delta(ctx, token, None, max(since - LOOK_BACK, primed_at))
    found.sort()  # Graph's receivedDateTime is UTC with Z: as text it sorts by time
    new = list(dict.fromkeys(message_id for _, message_id in found))
    if new and options.get("query"):
        matching = _outlook_search(ctx, token, str(options["query"]), set(new), found[0][0])
        new = [message_id for message_id in new if message_id in matching]
    return PollAnswer({"delta_link": following}, new, reset=gone)


def outlook_item(ctx: StepContext, token: Secret, options: Mapping[str, Any], key: str) -> dict[str, Any]:
    response = ctx.http.request(
        "GET", f"me/messages/{path_segment(key, 'Outlook message id')}", token=token, check=False,
        headers={"Prefer": 'outlook.body-content-type="text"'},
        params={"$select": "id,conversationId,from,toRecipients,subject,receivedDateTime,bodyPreview,body"})
    if response.status_code == 404:
        raise ItemGone("The new email was deleted from Outlook before this run could read it.")
    check_status(ctx.http.provider, response)
    message = _object(response_json(ctx.http.provider, response), "Microsoft Graph")
    body: dict[str, Any] = message["body"] if isinstance(message.get("body"), dict) else {}
    recipients = [address(r) for r in message.get("toRecipients") or [] if isinstance(r, dict)]
    return {"email": {"id": str(message.get("id", key)), "thread_id": str(message.get("conversationId") or ""),
                      "from": address(message.get("from")), "to": ", ".join(r for r in recipients if r),
                      "subject": str(message.get("subject") or ""),
                      "date": str(message.get("receivedDateTime") or ""),
                      "snippet": str(message.get("bodyPreview") or ""), "body_text": str(body.get("content") or "")}}


SOURCES: dict[str, Source] = {
    "gmail.new_email": Source(gmail_prime, gmail_poll, gmail_item),
    "sheets.new_row": Source(sheets_prime, sheets_poll, sheets_item),
    "calendar.new_event": Source(calendar_prime, calendar_poll, calendar_item),
    "hubspot.new_contact": Source(hubspot_prime, hubspot_poll, hubspot_item),
    "outlook.new_email": Source(outlook_prime, outlook_poll, outlook_item),
}
