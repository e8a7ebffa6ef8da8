"""Gmail, Sheets, Calendar and Drive steps against stand-ins shaped like Google's documented responses."""

from __future__ import annotations

import base64
import email
import json
import logging
import time
from datetime import UTC, datetime
from email import policy
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
import responses

from agent_service.capabilities.base import (
    LLMSettings,
    OutputInvalid,
    ProviderHTTP,
    ProviderRefused,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
    StepFailed,
)
from agent_service.capabilities.registry import run_capability
from shared.config import Environment, resolve_catalog
from shared.secret import Secret

TOKEN = Secret("ya29.token-canary")
GMAIL = "https://www.googleapis.com/gmail/v1/users/me"
SHEETS = "https://sheets.googleapis.com/v4/spreadsheets"
CALENDAR = "https://www.googleapis.com/calendar/v3/calendars"
DRIVE = "https://www.googleapis.com/drive/v3/files"
CANARY = "CANARY-7f3a-body-never-logged"
SHEET_ID = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
FILE_ID = "1ZdR3L3qP4Bkq8noWLJHSr_iBau0DNT4Kli4SxNc2YEo"


def context(provider: str = "google", environ: dict[str, str] | None = None) -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=0,
                       http=ProviderHTTP(resolve_catalog(Environment(environ or {})).provider(provider),
                                         verify="/dev/null"),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run:step")


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def metadata_message(message_id: str, *, minutes_ago: int, subject: str = "Invoice 42") -> dict:
    internal = int((time.time() - minutes_ago * 60) * 1000)
    return {
        "id": message_id, "threadId": f"t-{message_id}", "labelIds": ["INBOX", "UNREAD"],
        "snippet": f"Hello {CANARY}", "sizeEstimate": 5120, "historyId": "93121", "internalDate": str(internal),
        "payload": {"partId": "", "mimeType": "multipart/alternative", "filename": "",
                    "headers": [{"name": "From", "value": "Ada Lovelace <ada@example.com>"},
                                {"name": "Subject", "value": subject},
                                {"name": "Date", "value": "Thu, 1 Jan 2026 09:00:00 +0000"}]},
    }


def full_message(message_id: str, plain: str | None, html: str | None = None) -> dict:
    parts = []
    if plain is not None:
        parts.append({"partId": "0", "mimeType": "text/plain", "filename": "",
                      "headers": [{"name": "Content-Type", "value": 'text/plain; charset="UTF-8"'}],
                      "body": {"size": len(plain.encode()), "data": b64url(plain)}})
    if html is not None:
        parts.append({"partId": "1", "mimeType": "text/html", "filename": "",
                      "headers": [{"name": "Content-Type", "value": 'text/html; charset="UTF-8"'}],
                      "body": {"size": len(html.encode()), "data": b64url(html)}})
    parts.append({"partId": "2", "mimeType": "text/plain", "filename": "notes.txt",
                  "headers": [], "body": {"attachmentId": "ANGjdJ8", "size": 1200}})
    return {
        "id": message_id, "threadId": message_id, "labelIds": ["INBOX"], "internalDate": "1767258000000",
        "payload": {"partId": "", "mimeType": "multipart/mixed", "filename": "",
                    "headers": [{"name": "From", "value": "Ada <ada@example.com>"},
                                {"name": "Subject", "value": "Quarterly numbers"}],
                    "body": {"size": 0},
                    "parts": [{"partId": "", "mimeType": "multipart/alternative", "filename": "", "headers": [],
                               "body": {"size": 0}, "parts": parts[:-1]}, parts[-1]]},
    }


# --- Gmail -------------------------------------------------------------------------------------------


@responses.activate
def test_list_recent_uses_labels_and_never_q_and_keeps_only_messages_newer_than_the_window():
    responses.get(f"{GMAIL}/messages", json={"messages": [{"id": "m1", "threadId": "t-m1"},
                                                          {"id": "m2", "threadId": "t-m2"},
                                                          {"id": "m3", "threadId": "t-m3"}],
                                             "resultSizeEstimate": 3})
    responses.get(f"{GMAIL}/messages/m1", json=metadata_message("m1", minutes_ago=30))
    responses.get(f"{GMAIL}/messages/m2", json=metadata_message("m2", minutes_ago=600, subject="Lunch?"))
    responses.get(f"{GMAIL}/messages/m3", json=metadata_message("m3", minutes_ago=3 * 24 * 60))

    result = run_capability("gmail.list_recent", context(), TOKEN,
                            {"label_ids": ["INBOX", "UNREAD"], "newer_than_days": 1, "max_results": 20})

    listing = query(responses.calls[0])
    assert "q" not in listing  # gmail.metadata answers 403 to any q
    assert listing["labelIds"] == ["INBOX", "UNREAD"] and listing["maxResults"] == ["20"]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer ya29.token-canary"
    detail = query(responses.calls[1])
    assert detail["format"] == ["metadata"] and detail["metadataHeaders"] == ["From", "Subject", "Date"]
    assert [m["id"] for m in result.output["messages"]] == ["m1", "m2"]
    first = result.output["messages"][0]
    assert first["sender"] == "Ada Lovelace <ada@example.com>" and first["subject"] == "Invoice 42"
    assert first["thread_id"] == "t-m1" and first["date"].endswith("Z")
    assert result.counts == {"messages": 2}
    assert CANARY not in json.dumps(result.output)  # snippets are not passed on


@responses.activate
def test_search_sends_the_query_and_returns_sender_subject_and_date():
    responses.get(f"{GMAIL}/messages", json={"messages": [{"id": "a1", "threadId": "t-a1"}], "resultSizeEstimate": 1})
    responses.get(f"{GMAIL}/messages/a1", json=metadata_message("a1", minutes_ago=5))
    result = run_capability("gmail.search", context(), TOKEN, {"query": "from:ada@example.com is:unread",
                                                               "max_results": 5})
    assert query(responses.calls[0])["q"] == ["from:ada@example.com is:unread"]
    assert query(responses.calls[0])["maxResults"] == ["5"]
    assert result.output["messages"][0]["id"] == "a1" and result.counts == {"messages": 1}


@responses.activate
def test_search_with_no_matches_returns_an_empty_list():
    responses.get(f"{GMAIL}/messages", json={"resultSizeEstimate": 0})
    result = run_capability("gmail.search", context(), TOKEN, {"query": "nothing", "max_results": 20})
    assert result.output == {"messages": []} and result.counts == {"messages": 0}


@responses.activate
def test_read_decodes_text_plain_parts_and_skips_attachments():
    body = f"Revenue is up.\n{CANARY}\nÜberweisung folgt."
    responses.get(f"{GMAIL}/messages/r1", json=full_message("r1", body, "<p>HTML twin</p>"))
    result = run_capability("gmail.read", context(), TOKEN, {"message_ids": ["r1"]})
    assert query(responses.calls[0])["format"] == ["full"]
    email_out = result.output["emails"][0]
    assert email_out == {"id": "r1", "sender": "Ada <ada@example.com>", "subject": "Quarterly numbers",
                         "body_text": body}
    assert result.counts == {"messages": 1, "bytes": len(body.encode())}
    assert CANARY not in json.dumps(result.counts)


@responses.activate
def test_read_falls_back_to_the_visible_text_of_an_html_only_message():
    html = "<html><head><style>p{}</style></head><body><p>Hello&nbsp;there</p><script>x()</script>" \
           "<div>Second line</div></body></html>"
    responses.get(f"{GMAIL}/messages/h1", json=full_message("h1", None, html))
    result = run_capability("gmail.read", context(), TOKEN, {"message_ids": ["h1"]})
    assert result.output["emails"][0]["body_text"] == "Hello there\nSecond line"


def test_read_refuses_a_message_id_that_would_walk_the_path():
    with pytest.raises(StepFailed):
        run_capability("gmail.read", context(), TOKEN, {"message_ids": [".."]})


@responses.activate
def test_create_draft_sends_a_base64url_rfc822_message():
    responses.post(f"{GMAIL}/drafts", json={"id": "r-5081", "message": {"id": "18c2", "threadId": "18c2",
                                                                         "labelIds": ["DRAFT"]}})
    result = run_capability("gmail.create_draft", context(), TOKEN,
                            {"to": ["bob@example.com", "eve@example.org"], "subject": "Your quote",
                             "body_text": "Dear Bob,\nhere it is.\n"})
    sent = json.loads(responses.calls[0].request.body)
    raw = base64.urlsafe_b64decode(sent["message"]["raw"])
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["To"] == "bob@example.com, eve@example.org" and parsed["Subject"] == "Your quote"
    assert b"\r\n" in raw and parsed.get_content().replace("\r\n", "\n") == "Dear Bob,\nhere it is.\n"
    assert result.output == {"draft_id": "r-5081"}
    assert result.counts == {"drafts": 1, "recipients": 2}


def test_create_draft_refuses_header_injection_in_the_subject():
    with pytest.raises(StepFailed) as caught:
        run_capability("gmail.create_draft", context(), TOKEN,
                       {"to": ["bob@example.com"], "subject": "Hi\r\nBcc: eve@example.org", "body_text": "x"})
    assert "eve@" not in caught.value.safe_message


# --- Errors, as every Google call maps them -------------------------------------------------------


@responses.activate
def test_a_401_is_provider_unauthorized():
    responses.get(f"{GMAIL}/messages", status=401, json={"error": {"code": 401, "message": "Invalid Credentials",
                                                                   "status": "UNAUTHENTICATED"}})
    with pytest.raises(ProviderUnauthorized):
        run_capability("gmail.search", context(), TOKEN, {"query": "x", "max_results": 1})


@responses.activate
def test_a_429_with_retry_after_is_transient_with_its_delay():
    responses.get(f"{GMAIL}/messages", status=429, headers={"Retry-After": "17"},
                  json={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(ProviderTransient) as caught:
        run_capability("gmail.search", context(), TOKEN, {"query": "x", "max_results": 1})
    assert caught.value.retry_after == 17.0 and caught.value.transient


@pytest.mark.parametrize("status", [500, 502, 503])
@responses.activate
def test_a_5xx_is_transient(status):
    responses.get(f"{SHEETS}/{SHEET_ID}/values/A1%3AB2", status=status, body="<html>oops</html>")
    with pytest.raises(ProviderTransient):
        run_capability("sheets.read", context(), TOKEN, {"spreadsheet_id": SHEET_ID, "range": "A1:B2"})


@responses.activate
def test_googles_403_rate_limit_is_transient_but_a_403_scope_error_is_refused():
    responses.get(f"{GMAIL}/messages", status=403, json={"error": {
        "code": 403, "message": "User Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit"}]}})
    with pytest.raises(ProviderTransient):
        run_capability("gmail.search", context(), TOKEN, {"query": "x", "max_results": 1})
    responses.replace(responses.GET, f"{GMAIL}/messages", status=403, json={"error": {
        "code": 403, "message": f"Request had insufficient authentication scopes. {CANARY}",
        "errors": [{"domain": "global", "reason": "insufficientPermissions", "message": CANARY}]}})
    with pytest.raises(ProviderRefused) as caught:
        run_capability("gmail.search", context(), TOKEN, {"query": "x", "max_results": 1})
    assert CANARY not in str(caught.value)


@responses.activate
def test_canary_content_reaches_neither_counts_nor_errors_nor_logs(caplog):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{GMAIL}/messages/c1", json=full_message("c1", f"Secret plan {CANARY}"))
    responses.get(f"{GMAIL}/messages/c2", status=503, body=f"upstream said {CANARY}")
    with pytest.raises(ProviderTransient) as caught:
        run_capability("gmail.read", context(), TOKEN, {"message_ids": ["c1", "c2"]})
    assert CANARY not in str(caught.value) and CANARY not in caught.value.safe_message
    assert "ya29" not in str(caught.value)
    responses.replace(responses.GET, f"{GMAIL}/messages/c2", body=f"not json {CANARY}")
    with pytest.raises(OutputInvalid) as invalid:
        run_capability("gmail.read", context(), TOKEN, {"message_ids": ["c1", "c2"]})
    assert CANARY not in str(invalid.value)
    assert CANARY not in caplog.text and "ya29" not in caplog.text


def test_without_a_token_a_google_step_fails_clearly():
    with pytest.raises(StepFailed, match="connected Google Workspace account"):
        run_capability("gmail.search", context(), None, {"query": "x", "max_results": 1})


# --- Sheets ------------------------------------------------------------------------------------------


@responses.activate
def test_sheets_read_gets_the_encoded_range_and_returns_rows():
    responses.get(f"{SHEETS}/{SHEET_ID}/values/Leads%21A1%3AC3",
                  json={"range": "Leads!A1:C3", "majorDimension": "ROWS",
                        "values": [["Name", "Email"], ["Ada", "ada@example.com", "VIP"]]})
    result = run_capability("sheets.read", context(), TOKEN, {"spreadsheet_id": SHEET_ID, "range": "Leads!A1:C3"})
    assert query(responses.calls[0])["majorDimension"] == ["ROWS"]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer ya29.token-canary"
    assert result.output == {"rows": [["Name", "Email"], ["Ada", "ada@example.com", "VIP"]]}
    assert result.counts == {"rows": 2, "cells": 5}


@responses.activate
def test_sheets_read_of_an_empty_range_has_no_values_key():
    responses.get(f"{SHEETS}/{SHEET_ID}/values/Empty%21A1%3AB2", json={"range": "Empty!A1:B2",
                                                                        "majorDimension": "ROWS"})
    result = run_capability("sheets.read", context(), TOKEN, {"spreadsheet_id": SHEET_ID, "range": "Empty!A1:B2"})
    assert result.output == {"rows": []}


@responses.activate
def test_sheets_append_inserts_rows_raw_so_formulas_stay_text():
    responses.post(f"{SHEETS}/{SHEET_ID}/values/Leads%21A1:append", json={
        "spreadsheetId": SHEET_ID, "tableRange": "Leads!A1:C7",
        "updates": {"spreadsheetId": SHEET_ID, "updatedRange": "Leads!A8:C9", "updatedRows": 2,
                    "updatedColumns": 3, "updatedCells": 6}})
    rows = [["Ada", "=IMPORTXML(\"https://evil\")", 3], ["Bob", None, {"k": 1}]]
    result = run_capability("sheets.append", context(), TOKEN,
                            {"spreadsheet_id": SHEET_ID, "range": "Leads!A1", "rows": rows})
    params = query(responses.calls[0])
    assert params["valueInputOption"] == ["RAW"] and params["insertDataOption"] == ["INSERT_ROWS"]
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {"majorDimension": "ROWS",
                    "values": [["Ada", "=IMPORTXML(\"https://evil\")", 3], ["Bob", "", "{\"k\":1}"]]}
    assert result.output == {"updated_rows": 2} and result.counts == {"rows": 2}


def test_sheets_under_a_local_stand_in_use_the_overridden_base():
    ctx = context(environ={"HAPEX_GOOGLE_API_BASE_URL": "https://google.fake.test"})
    with responses.RequestsMock() as mock:
        mock.get(f"https://google.fake.test/v4/spreadsheets/{SHEET_ID}/values/A1", json={"values": [["x"]]})
        assert run_capability("sheets.read", ctx, TOKEN, {"spreadsheet_id": SHEET_ID, "range": "A1"}).output == {
            "rows": [["x"]]}


# --- Calendar ----------------------------------------------------------------------------------------


@responses.activate
def test_calendar_list_asks_for_single_events_in_start_order_within_the_window():
    responses.get(f"{CALENDAR}/team%40example.com/events", json={
        "kind": "calendar#events", "summary": "team@example.com", "timeZone": "Europe/Paris",
        "items": [
            {"kind": "calendar#event", "id": "e1", "status": "confirmed", "summary": "Stand-up",
             "start": {"dateTime": "2026-01-05T09:00:00+01:00", "timeZone": "Europe/Paris"},
             "end": {"dateTime": "2026-01-05T09:15:00+01:00", "timeZone": "Europe/Paris"}},
            {"kind": "calendar#event", "id": "e2", "status": "confirmed", "summary": "Offsite",
             "start": {"date": "2026-01-06"}, "end": {"date": "2026-01-07"}},
        ]})
    before = datetime.now(UTC)
    result = run_capability("calendar.list_events", context(), TOKEN,
                            {"calendar_id": "team@example.com", "days_ahead": 7, "max_results": 50})
    params = query(responses.calls[0])
    assert params["singleEvents"] == ["true"] and params["orderBy"] == ["startTime"]
    assert params["maxResults"] == ["50"]
    time_min = datetime.fromisoformat(params["timeMin"][0].replace("Z", "+00:00"))
    time_max = datetime.fromisoformat(params["timeMax"][0].replace("Z", "+00:00"))
    assert abs((time_min - before).total_seconds()) < 5 and round((time_max - time_min).total_seconds()) == 7 * 86400
    assert result.output["events"] == [
        {"id": "e1", "title": "Stand-up", "start": "2026-01-05T09:00:00+01:00", "end": "2026-01-05T09:15:00+01:00"},
        {"id": "e2", "title": "Offsite", "start": "2026-01-06", "end": "2026-01-07"}]
    assert result.counts == {"events": 2}


@responses.activate
def test_calendar_create_sends_an_id_derived_from_the_idempotency_key():
    ctx = context()
    responses.post(f"{CALENDAR}/primary/events", json={"kind": "calendar#event", "id": ctx.provider_request_id(),
                                                       "status": "confirmed", "htmlLink": "https://calendar..."})
    result = run_capability("calendar.create_event", ctx, TOKEN, {
        "calendar_id": "primary", "title": "Call Ada", "description": "About the quote",
        "start": datetime(2026, 2, 3, 10, 0, tzinfo=UTC), "end": datetime(2026, 2, 3, 10, 30, tzinfo=UTC)})
    sent = json.loads(responses.calls[0].request.body)
    assert sent["summary"] == "Call Ada" and sent["description"] == "About the quote"
    assert sent["start"] == {"dateTime": "2026-02-03T10:00:00Z"} and sent["end"] == {"dateTime": "2026-02-03T10:30:00Z"}
    assert sent["id"] == ctx.provider_request_id()
    assert set(sent["id"]) <= set("0123456789abcdefghijklmnopqrstuv") and 5 <= len(sent["id"]) <= 1024
    assert result.output == {"id": ctx.provider_request_id()} and result.counts == {"events": 1}


@responses.activate
def test_a_retried_calendar_create_finds_its_own_event_instead_of_a_second_one():
    ctx = context()
    responses.post(f"{CALENDAR}/primary/events", status=409, json={"error": {
        "code": 409, "message": "The requested identifier already exists.",
        "errors": [{"domain": "global", "reason": "duplicate"}]}})
    result = run_capability("calendar.create_event", ctx, TOKEN, {
        "title": "Call Ada", "start": "2026-02-03T10:00:00+00:00", "end": "2026-02-03T11:00:00+00:00"})
    assert result.output == {"id": ctx.provider_request_id()}


def test_calendar_create_refuses_an_event_that_ends_before_it_starts():
    with pytest.raises(StepFailed, match="end after it starts"):
        run_capability("calendar.create_event", context(), TOKEN, {
            "title": "x", "start": datetime(2026, 2, 3, 11, tzinfo=UTC), "end": datetime(2026, 2, 3, 10, tzinfo=UTC)})


# --- Drive -------------------------------------------------------------------------------------------


@responses.activate
def test_drive_exports_a_google_doc_as_plain_text():
    responses.get(f"{DRIVE}/{FILE_ID}", json={"id": FILE_ID, "name": "Price list",
                                              "mimeType": "application/vnd.google-apps.document"})
    responses.get(f"{DRIVE}/{FILE_ID}/export", body="\ufeffWidgets: 4 EUR\r\n".encode(),
                  content_type="text/plain; charset=utf-8")
    result = run_capability("drive.read_file", context(), TOKEN, {"file_id": FILE_ID})
    assert query(responses.calls[0])["fields"] == ["id,name,mimeType,size"]
    assert query(responses.calls[1])["mimeType"] == ["text/plain"]
    assert result.output == {"name": "Price list", "mime_type": "application/vnd.google-apps.document",
                             "text": "Widgets: 4 EUR\r\n"}
    assert result.counts == {"files": 1, "bytes": len("\ufeffWidgets: 4 EUR\r\n".encode())}


@responses.activate
def test_drive_downloads_a_text_file_with_alt_media():
    responses.get(f"{DRIVE}/{FILE_ID}", json={"id": FILE_ID, "name": "notes.csv", "mimeType": "text/csv",
                                              "size": "13"})
    responses.get(f"{DRIVE}/{FILE_ID}", body=b"a,b\n1,2\nx,y\n", content_type="text/csv",
                  match=[responses.matchers.query_param_matcher({"alt": "media", "supportsAllDrives": "true"})])
    result = run_capability("drive.read_file", context(), TOKEN, {"file_id": FILE_ID})
    assert result.output["text"] == "a,b\n1,2\nx,y\n" and result.counts["bytes"] == 12
    assert query(responses.calls[1])["alt"] == ["media"]


@responses.activate
def test_drive_refuses_binary_files_without_downloading_them():
    responses.get(f"{DRIVE}/{FILE_ID}", json={"id": FILE_ID, "name": "scan.pdf", "mimeType": "application/pdf",
                                              "size": "90000"})
    with pytest.raises(ProviderRefused, match="text files"):
        run_capability("drive.read_file", context(), TOKEN, {"file_id": FILE_ID})
    assert len(responses.calls) == 1


@responses.activate
def test_drive_refuses_a_file_larger_than_hapex_reads():
    responses.get(f"{DRIVE}/{FILE_ID}", json={"id": FILE_ID, "name": "big.txt", "mimeType": "text/plain"})
    responses.get(f"{DRIVE}/{FILE_ID}", body=b"x" * 5_000_001, content_type="text/plain",
                  match=[responses.matchers.query_param_matcher({"alt": "media", "supportsAllDrives": "true"})])
    with pytest.raises(ProviderRefused, match="larger"):
        run_capability("drive.read_file", context(), TOKEN, {"file_id": FILE_ID})
