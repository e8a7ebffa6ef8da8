"""'When something new arrives': one run per new item, the first poll taking the state, cursors reset by
the provider, the cap per poll, and the run reading its item's fields from the provider.

Google is mocked with `responses` in the shapes of its discovery documents: gmail v1 users.getProfile
(historyId), users.history.list (startHistoryId, historyTypes; history[].messagesAdded[].message,
historyId, nextPageToken; 404 for a history id it no longer keeps), users.messages.list (q; messages[],
nextPageToken) and .get (format=full); sheets v4 spreadsheets.values.get (values); calendar v3
events.list (syncToken, timeMin; items[], nextSyncToken, nextPageToken; 410 Gone) and events.get.
Microsoft Graph in the shapes of its v1.0 reference: message: delta on the inbox (changeType, $select,
$filter=receivedDateTime ge; value[], @odata.nextLink, @odata.deltaLink; 410 SyncStateNotFound), list
messages with $search (value[], newest first) and get message ($select, Prefer outlook.body-content-type).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import responses

from agent_service.polls import poller
from agent_service.runs import triggers
from agent_service.runs.engine import execute_run
from shared.db import tenant_transaction
from tests.factories import make_client
from tests.run_fixtures import GMAIL, SLACK_POST, G, automation, connect

SHEETS = "https://sheets.googleapis.com/v4/spreadsheets/1AbCdEfGhIjKlMnOpQrStUv/values/"
EVENTS = "https://www.googleapis.com/calendar/v3/calendars/primary/events"


def definition(source, options=None, text="New: {{ trigger.started_at }}"):
    return {"name": "When new", "trigger": {"kind": "poll", "source": source, "every_minutes": 5,
                                            "options": options or {}},
            "steps": [{"capability": "slack.post_message", "input": {"channel": "#accounts", "text": text}}]}


EMAIL = definition("gmail.new_email", {"query": "subject:invoice"},
                   "Invoice from {{ trigger.email.from }}: {{ trigger.email.subject }}")
ROW = definition("sheets.new_row", {"spreadsheet_id": "1AbCdEfGhIjKlMnOpQrStUv", "sheet": "Leads"},
                 "New lead {{ trigger.row.full_name }} (row {{ trigger.row_number }})")
EVENT = definition("calendar.new_event", {}, "New event {{ trigger.event.summary }} at {{ trigger.event.start }}")


def poll_tenant(rt, intake_db, agent_db, scopes, the_definition):
    client_id = make_client(intake_db)
    connect(rt, agent_db, client_id, "google", scopes)
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    return client_id, automation(intake_db, client_id, the_definition)


def poll(rt, client_id, automation_id):
    """Poll now, as the periodic job does once the automation is due."""
    with tenant_transaction(rt.db, client_id) as conn:
        conn.execute("UPDATE automations SET next_run_at = CASE WHEN next_run_at IS NULL THEN NULL "
                     "ELSE now() - interval '1 second' END "
                     "WHERE automation_id = %s", [automation_id])
    return poller.poll_automation(rt, client_id=client_id, automation_id=automation_id, now=datetime.now(UTC))


def poll_runs(owner_conn, automation_id):
    return owner_conn.execute("SELECT trigger_item FROM runs WHERE automation_id = %s AND trigger_kind = 'poll' "
                              "ORDER BY queued_at, trigger_item", [automation_id]).fetchall()


def gmail_profile(mock, history_id):
    mock.get(f"{GMAIL}/profile", json={"emailAddress": "owner@example.com", "messagesTotal": 5000,
                                       "threadsTotal": 4000, "historyId": history_id})


def gmail_history(mock, start, added, history_id):
    mock.get(f"{GMAIL}/history", match=[responses.matchers.query_param_matcher(
        {"startHistoryId": start, "historyTypes": "messageAdded", "maxResults": "500"})],
        json={"history": [{"id": str(int(start) + n + 1), "messages": [{"id": m, "threadId": "t" + m}],
                           "messagesAdded": [{"message": {"id": m, "threadId": "t" + m, "labelIds": ["INBOX"]}}]}
                          for n, m in enumerate(added)], "historyId": history_id})


def gmail_search(mock, ids):
    mock.get(f"{GMAIL}/messages", json={"messages": [{"id": m, "threadId": "t" + m} for m in reversed(ids)],
                                        "resultSizeEstimate": len(ids)})


def test_run_now_is_refused_for_a_poll_automation_whose_fields_would_all_be_empty(rt, intake_db, agent_db,
                                                                                  owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    with tenant_transaction(agent_db, client_id) as conn, pytest.raises(triggers.NeedsNewItem):
        triggers.start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


@responses.activate
def test_the_first_poll_takes_the_mailbox_as_seen_and_starts_nothing(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")

    outcome = poll(rt, client_id, automation_id)

    assert outcome.primed and outcome.started == 0
    assert poll_runs(owner_conn, automation_id) == []
    assert owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == ({"history_id": "1000"},)
    assert not any("/history" in call.request.url for call in responses.calls)


@responses.activate
def test_every_5_minutes_is_the_job_5_minutes_later_however_late_in_its_minute_a_poll_ran(
        rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    # The minute's job ran 0.77 s after the minute; the one 5 minutes on will run 0.61 s after its minute.
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    assert poller.poll_automation(rt, client_id=client_id, automation_id=automation_id,
                                  now=minute + timedelta(seconds=0.77)).primed
    assert owner_conn.execute("SELECT next_run_at FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (minute + timedelta(minutes=5),)
    gmail_history(responses.mock, "1000", [], "1000")

    later = poller.poll_automation(rt, client_id=client_id, automation_id=automation_id,
                                   now=minute + timedelta(minutes=5, seconds=0.61))

    assert not later.skipped and not later.primed
    assert any("/history" in call.request.url for call in responses.calls)


@responses.activate
def test_each_new_matching_email_starts_one_run_whose_fields_come_from_gmail(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    gmail_history(responses.mock, "1000", ["m1", "m2", "m3"], "1010")
    gmail_search(responses.mock, ["m1", "m3"])  # m2 does not match the search

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 2
    assert poll_runs(owner_conn, automation_id) == [("m1",), ("m3",)]
    search = next(c.request for c in responses.calls if c.request.url.startswith(f"{GMAIL}/messages?"))
    assert re.search(r"q=%28subject%3Ainvoice%29\+after%3A\d+", search.url)
    # The seen record holds ids, never contents; the run holds only the item's id.
    assert owner_conn.execute("SELECT item_key FROM poll_seen WHERE automation_id = %s ORDER BY position",
                              [automation_id]).fetchall() == [("m1",), ("m3",)]
    responses.mock.get(f"{GMAIL}/messages/m1", json={
        "id": "m1", "threadId": "tm1", "snippet": "Please find attached",
        "payload": {"mimeType": "text/plain", "headers": [{"name": "From", "value": "billing@supplier.example"},
                                                          {"name": "Subject", "value": "Invoice 42"}],
                    "body": {"data": "UGxlYXNlIHBheQ"}}})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1795900000.000100"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = 'm1'").fetchone()[0]

    assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"

    assert b"Invoice from billing@supplier.example: Invoice 42" in slack.calls[0].request.body
    assert owner_conn.execute("SELECT reason FROM credential_access WHERE run_id = %s ORDER BY accessed_at",
                              [run_id]).fetchall()[0] == ("trigger_item",)


@responses.activate
def test_a_poll_that_finds_nothing_writes_no_run_and_no_seen_record(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    gmail_history(responses.mock, "1000", [], "1000")
    before = owner_conn.execute("SELECT polled_at FROM poll_states WHERE automation_id = %s",
                                [automation_id]).fetchone()

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 0 and not outcome.primed and not outcome.skipped
    assert owner_conn.execute("SELECT count(*) FROM runs WHERE automation_id = %s", [automation_id]).fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM poll_seen WHERE automation_id = %s",
                              [automation_id]).fetchone() == (0,)
    assert owner_conn.execute("SELECT polled_at FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == before


@responses.activate
def test_a_history_id_gmail_no_longer_keeps_falls_back_to_the_search_without_doubling(rt, intake_db, agent_db,
                                                                                    owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    gmail_history(responses.mock, "1000", ["m1"], "1005")
    gmail_search(responses.mock, ["m1"])
    poll(rt, client_id, automation_id)
    responses.mock.replace(responses.GET, f"{GMAIL}/history", status=404, json={
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})
    responses.mock.replace(responses.GET, f"{GMAIL}/messages", json={
        "messages": [{"id": "m2", "threadId": "tm2"}, {"id": "m1", "threadId": "tm1"}], "resultSizeEstimate": 2})
    responses.mock.replace(responses.GET, f"{GMAIL}/profile", json={"historyId": "2000"})

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 1  # m2 only: m1 had its run already
    assert poll_runs(owner_conn, automation_id) == [("m1",), ("m2",)]
    assert owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == ({"history_id": "2000"},)


@responses.activate
def test_a_burst_starts_at_most_the_cap_per_poll_and_the_rest_over_the_next_polls(rt, intake_db, agent_db,
                                                                                 owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    burst = [f"m{n:03}" for n in range(60)]
    gmail_history(responses.mock, "1000", burst, "1100")
    gmail_search(responses.mock, burst)

    first = poll(rt, client_id, automation_id)

    assert (first.started, first.waiting) == (poller.PER_POLL_CAP, 60 - poller.PER_POLL_CAP)
    assert [r[0] for r in poll_runs(owner_conn, automation_id)] == burst[:poller.PER_POLL_CAP]
    gmail_history(responses.mock, "1100", [], "1100")
    second = poll(rt, client_id, automation_id)
    third = poll(rt, client_id, automation_id)
    assert (second.started, third.started, third.waiting) == (25, 10, 0)
    assert sorted(r[0] for r in poll_runs(owner_conn, automation_id)) == burst


@responses.activate
def test_two_pollers_at_once_start_each_new_email_once(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    entered, release = threading.Event(), threading.Event()

    def slow_history(request):
        entered.set()
        release.wait(60)
        return 200, {}, ('{"history": [{"id": "1001", "messagesAdded": [{"message": {"id": "m1", "threadId": "t"}}]}],'
                         ' "historyId": "1001"}')

    responses.mock.add_callback(responses.GET, f"{GMAIL}/history", callback=slow_history)
    gmail_search(responses.mock, ["m1"])
    outcomes = []
    first = threading.Thread(target=lambda: outcomes.append(poll(rt, client_id, automation_id)))
    first.start()
    assert entered.wait(60)
    # The state is locked by the first poll: the second passes it by.
    second = poller.poll_automation(rt, client_id=client_id, automation_id=automation_id, now=datetime.now(UTC))
    release.set()
    first.join(600)

    assert second.skipped and outcomes[0].started == 1
    assert poll_runs(owner_conn, automation_id) == [("m1",)]


@responses.activate
def test_new_rows_of_a_sheet_start_one_run_each_with_cells_by_column_name(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "spreadsheets.readonly"], ROW)
    whole = f"{SHEETS}%27Leads%27"
    rows = [["Full name", "Email"], ["Ada", "ada@example.com"]]
    responses.mock.get(whole, json={"range": "Leads!A1:B2", "majorDimension": "ROWS", "values": rows})
    assert poll(rt, client_id, automation_id).primed
    responses.mock.replace(responses.GET, whole, json={"range": "Leads!A1:B4", "majorDimension": "ROWS",
                                                       "values": rows + [["Bob", "bob@example.com"],
                                                                         ["Cy", "cy@example.com"]]})

    assert poll(rt, client_id, automation_id).started == 2
    items = [r[0] for r in poll_runs(owner_conn, automation_id)]
    assert [item.split(":")[:2] for item in items] == [["row", "3"], ["row", "4"]]
    assert not any("Bob" in item for item in items)
    responses.mock.get(f"{whole}%211%3A1", json={"range": "Leads!A1:B1", "values": [["Full name", "Email"]]})
    responses.mock.get(f"{whole}%213%3A3", json={"range": "Leads!A3:B3", "values": [["Bob", "bob@example.com"]]})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1795900000.000100"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = %s", [items[0]]).fetchone()[0]
    assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"
    assert b"New lead Bob (row 3)" in slack.calls[0].request.body


@responses.activate
def test_a_new_rows_key_is_its_number_alone_so_no_cell_can_be_guessed_from_a_dump(rt, intake_db, agent_db,
                                                                                  owner_conn):
    """poll_seen and runs.trigger_item keep ids only: an unkeyed hash of a row's cells let whoever holds
    a dump confirm a guessed row (one email address in a one-column sheet). Rows removed and added again
    are new rows: a new count, whatever their cells."""
    whole = f"{SHEETS}%27Leads%27"
    header = [["Full name", "Email"]]
    tenants = []
    for lead in (["Bob", "bob@example.com"], ["Eve", "eve@example.com"]):
        client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "spreadsheets.readonly"], ROW)
        responses.mock.upsert(responses.GET, whole, json={"range": "Leads!A1:B1", "values": header})
        assert poll(rt, client_id, automation_id).primed
        responses.mock.upsert(responses.GET, whole, json={"range": "Leads!A1:B2", "values": header + [lead]})
        assert poll(rt, client_id, automation_id).started == 1
        tenants.append((client_id, automation_id))
    seen = [owner_conn.execute("SELECT item_key FROM poll_seen WHERE automation_id = %s",
                               [automation_id]).fetchall() for _, automation_id in tenants]
    assert seen[0] == seen[1]  # the same key for Bob's row as for Eve's: nothing of the cells is in it
    client_id, automation_id = tenants[0]
    responses.mock.upsert(responses.GET, whole, json={"range": "Leads!A1:B1", "values": header})
    assert poll(rt, client_id, automation_id).started == 0  # the row was removed: nothing is new
    responses.mock.upsert(responses.GET, whole, json={"range": "Leads!A1:B2",
                                                      "values": header + [["Bob", "bob@example.com"]]})
    assert poll(rt, client_id, automation_id).started == 1  # added again: a new row, run again
    assert len(poll_runs(owner_conn, automation_id)) == 2


def event(event_id, created, summary="Call"):
    return {"kind": "calendar#event", "id": event_id, "status": "confirmed", "summary": summary,
            "created": created, "updated": created, "start": {"dateTime": "2026-12-10T09:00:00Z"},
            "end": {"dateTime": "2026-12-10T10:00:00Z"}}


@responses.activate
def test_a_calendar_sync_token_answered_410_is_replaced_by_a_full_sync_without_doubling(rt, intake_db, agent_db,
                                                                                      owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "calendar.events.readonly"], EVENT)
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    responses.mock.get(EVENTS, json={"kind": "calendar#events", "items": [event("old1", old)],
                                     "nextSyncToken": "sync-1"})
    assert poll(rt, client_id, automation_id).primed
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    responses.mock.replace(responses.GET, EVENTS, match=[responses.matchers.query_param_matcher(
        {"syncToken": "sync-1", "maxResults": "250"})], json={
        "kind": "calendar#events", "items": [event("new1", now), {**event("old1", old), "updated": now}],
        "nextSyncToken": "sync-2"})
    assert poll(rt, client_id, automation_id).started == 1  # old1 only changed: not new
    responses.mock.replace(responses.GET, EVENTS, status=410, json={
        "error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required.",
                  "errors": [{"domain": "calendar", "reason": "fullSyncRequired"}]}})
    responses.mock.get(EVENTS, json={"kind": "calendar#events", "items": [
        event("old1", old), event("new1", now), event("new2", now)], "nextSyncToken": "sync-3"})

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 1
    assert sorted(r[0] for r in poll_runs(owner_conn, automation_id)) == ["new1", "new2"]
    assert owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == ({"sync_token": "sync-3"},)


@responses.activate
def test_editing_the_trigger_takes_the_state_again_instead_of_running_for_the_backlog(rt, intake_db, agent_db,
                                                                                    owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    with tenant_transaction(intake_db, client_id) as conn:
        conn.execute("UPDATE automations SET status = 'disabled' WHERE automation_id = %s", [automation_id])
        conn.execute("UPDATE automations SET status = 'enabled', next_run_at = NULL WHERE automation_id = %s",
                     [automation_id])
    responses.mock.replace(responses.GET, f"{GMAIL}/profile", json={"historyId": "5000"})

    assert poll(rt, client_id, automation_id).primed
    assert owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == ({"history_id": "5000"},)


def test_a_google_connection_needing_reconnection_pauses_an_automation_that_only_polls_gmail(rt, intake_db,
                                                                                            agent_db, owner_conn):
    from agent_service.connections.lifecycle import pause_dependents
    from shared.catalog import get_provider

    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    with tenant_transaction(agent_db, client_id) as conn:
        paused = pause_dependents(conn, get_provider("google"))
    assert [row["automation_id"] for row in paused] == [automation_id]
    assert owner_conn.execute("SELECT status FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == ("paused",)


@responses.activate
def test_an_email_deleted_before_its_run_reads_it_fails_the_run_saying_so_and_runs_no_step(rt, intake_db, agent_db,
                                                                                          owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    gmail_history(responses.mock, "1000", ["m9"], "1001")
    gmail_search(responses.mock, ["m9"])
    poll(rt, client_id, automation_id)
    responses.mock.get(f"{GMAIL}/messages/m9", status=404, json={"error": {"code": 404, "message": "Not Found"}})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1.2"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = 'm9'").fetchone()[0]

    assert execute_run(rt, client_id=client_id, run_id=run_id) == "failed"

    assert owner_conn.execute("SELECT error_class, error_message FROM runs WHERE run_id = %s", [run_id]).fetchone() == (
        "trigger_item_gone", "The new item could not be read: The new email was deleted from Gmail before this run "
                             "could read it.")
    assert owner_conn.execute("SELECT status FROM run_steps WHERE run_id = %s", [run_id]).fetchall() == [("skipped",)]
    assert slack.call_count == 0


@responses.activate
def test_a_poll_gmail_fails_keeps_nothing_and_waits_for_the_next_interval(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = poll_tenant(rt, intake_db, agent_db, [G + "gmail.readonly"], EMAIL)
    gmail_profile(responses.mock, "1000")
    poll(rt, client_id, automation_id)
    responses.mock.get(f"{GMAIL}/history", status=503, json={"error": {"code": 503, "message": "Backend Error"}})

    outcome = poll(rt, client_id, automation_id)

    assert outcome.skipped and outcome.started == 0
    assert owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone() == ({"history_id": "1000"},)
    assert owner_conn.execute("SELECT next_run_at > now() + interval '4 minutes' FROM automations "
                              "WHERE automation_id = %s", [automation_id]).fetchone() == (True,)


HUBSPOT = "https://api.hubapi.com/crm/v3/objects/contacts"
CONTACT = definition("hubspot.new_contact", {},
                     "Welcome {{ trigger.contact.first_name }} ({{ trigger.contact.email }})")


@responses.activate
def test_each_new_hubspot_contact_starts_one_run_with_its_fields_and_the_search_looks_back_for_late_ones(
        rt, intake_db, agent_db, owner_conn):
    client_id = make_client(intake_db)
    connect(rt, agent_db, client_id, "hubspot", ["crm.objects.contacts.read"])
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    automation_id = automation(intake_db, client_id, CONTACT)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    responses.mock.post(f"{HUBSPOT}/search", json={"total": 1, "results": [
        {"id": "501", "properties": {"createdate": str(now_ms - 86_400_000)}, "archived": False}]})
    assert poll(rt, client_id, automation_id).primed
    search = responses.mock.replace(responses.POST, f"{HUBSPOT}/search", json={"total": 2, "results": [
        {"id": "601", "properties": {"createdate": str(now_ms + 1000)}, "archived": False},
        {"id": "602", "properties": {"createdate": str(now_ms + 2000)}, "archived": False}]})

    assert poll(rt, client_id, automation_id).started == 2
    body = json.loads(search.calls[-1].request.body)
    assert body["filterGroups"][0]["filters"][0]["propertyName"] == "createdate"
    assert body["filterGroups"][0]["filters"][0]["operator"] == "GTE"
    assert body["sorts"] == [{"propertyName": "createdate", "direction": "ASCENDING"}]
    assert poll(rt, client_id, automation_id).started == 0  # the look-back finds them again: seen, not doubled
    assert poll_runs(owner_conn, automation_id) == [("601",), ("602",)]
    responses.mock.get(f"{HUBSPOT}/601", json={"id": "601", "properties": {
        "email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "createdate": str(now_ms + 1000)}})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1.2"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = '601'").fetchone()[0]
    assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"
    assert b"Welcome Ada (ada@example.com)" in slack.calls[0].request.body


GRAPH = "https://graph.microsoft.com/v1.0"
DELTA = f"{GRAPH}/me/mailFolders/inbox/messages/delta"
OUTLOOK = definition("outlook.new_email", {"query": "subject:invoice"},
                     "Invoice from {{ trigger.email.from }}: {{ trigger.email.subject }}")


def outlook_tenant(rt, intake_db, agent_db):
    client_id = make_client(intake_db)
    connect(rt, agent_db, client_id, "microsoft", ["Mail.Read"])
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    return client_id, automation(intake_db, client_id, OUTLOOK)


def delta_link(token):
    return f"{DELTA}?$deltatoken={token}"


def fresh_delta(mock, ids, token):
    """A fresh round (no token): the inbox's messages received from the $filter's time on."""
    return mock.get(DELTA, match=[responses.matchers.query_param_matcher(
        {"changeType": "created", "$select": "id,receivedDateTime"}, strict_match=False)],
        json={"@odata.context": f"{GRAPH}/$metadata#Collection(message)",
              "value": [{"id": m, "receivedDateTime": f"2026-12-03T10:0{n}:00Z"} for n, m in enumerate(ids)],
              "@odata.deltaLink": delta_link(token)})


def delta_page(mock, token, ids, *, next_token=None, following=None):
    answer = {"value": [{"id": m, "receivedDateTime": f"2026-12-03T11:0{n}:00Z"} for n, m in enumerate(ids)]}
    if following:
        answer["@odata.nextLink"] = f"{DELTA}?$skiptoken={following}"
    else:
        answer["@odata.deltaLink"] = delta_link(next_token)
    return mock.get(DELTA, match=[responses.matchers.query_param_matcher(
        {"$skiptoken" if token.startswith("skip") else "$deltatoken": token})], json=answer)


def outlook_search(mock, ids):
    return mock.get(f"{GRAPH}/me/messages", json={"value": [
        {"id": m, "receivedDateTime": "2026-12-03T11:00:00Z"} for m in reversed(ids)]})


def outlook_cursor(owner_conn, automation_id):
    return owner_conn.execute("SELECT cursor FROM poll_states WHERE automation_id = %s",
                              [automation_id]).fetchone()[0]


@responses.activate
def test_the_first_outlook_poll_takes_the_inbox_delta_link_and_starts_nothing(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh = fresh_delta(responses.mock, [], "D1")

    outcome = poll(rt, client_id, automation_id)

    assert outcome.primed and outcome.started == 0
    assert poll_runs(owner_conn, automation_id) == []
    assert outlook_cursor(owner_conn, automation_id) == {"delta_link": delta_link("D1")}
    request = fresh.calls[0].request
    assert re.fullmatch(r"receivedDateTime ge \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", request.params["$filter"])
    assert request.headers["Prefer"] == "odata.maxpagesize=50"
    assert request.headers["Authorization"].startswith("Bearer microsoft-access-canary-")
    assert not any("/me/messages" in call.request.url for call in responses.calls)


@responses.activate
def test_each_new_matching_outlook_email_starts_one_run_whose_fields_come_from_graph(rt, intake_db, agent_db,
                                                                                    owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh_delta(responses.mock, [], "D1")
    poll(rt, client_id, automation_id)
    delta_page(responses.mock, "D1", ["o1", "o2"], following="skip2")  # the round goes on over @odata.nextLink
    delta_page(responses.mock, "skip2", ["o3"], next_token="D2")
    search = outlook_search(responses.mock, ["o1", "o3"])  # o2 does not match the search

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 2
    assert poll_runs(owner_conn, automation_id) == [("o1",), ("o3",)]
    assert outlook_cursor(owner_conn, automation_id) == {"delta_link": delta_link("D2")}
    assert search.calls[0].request.params["$search"] == '"subject:invoice"'
    assert owner_conn.execute("SELECT item_key FROM poll_seen WHERE automation_id = %s ORDER BY position",
                              [automation_id]).fetchall() == [("o1",), ("o3",)]
    message = responses.mock.get(f"{GRAPH}/me/messages/o1", json={
        "id": "o1", "conversationId": "c1", "subject": "Invoice 42", "receivedDateTime": "2026-12-03T11:00:00Z",
        "bodyPreview": "Please find attached", "body": {"contentType": "text", "content": "Please pay"},
        "from": {"emailAddress": {"name": "Billing", "address": "billing@supplier.example"}},
        "toRecipients": [{"emailAddress": {"name": "Owner", "address": "owner@example.com"}}]})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1795900000.000100"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = 'o1'").fetchone()[0]

    assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"

    assert "Invoice from Billing <billing@supplier.example>: Invoice 42" in json.loads(
        slack.calls[0].request.body)["text"]
    read = message.calls[0].request
    assert read.params["$select"] == "id,conversationId,from,toRecipients,subject,receivedDateTime,bodyPreview,body"
    assert read.headers["Prefer"] == 'outlook.body-content-type="text"'


@responses.activate
def test_an_outlook_poll_that_finds_nothing_writes_no_run_and_no_seen_record(rt, intake_db, agent_db, owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh_delta(responses.mock, [], "D1")
    poll(rt, client_id, automation_id)
    delta_page(responses.mock, "D1", [], next_token="D2")

    outcome = poll(rt, client_id, automation_id)

    assert outcome.started == 0 and not outcome.primed and not outcome.skipped
    assert owner_conn.execute("SELECT count(*) FROM runs WHERE automation_id = %s", [automation_id]).fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM poll_seen WHERE automation_id = %s",
                              [automation_id]).fetchone() == (0,)
    # Graph gives a new delta link each round: the next round asks from it.
    assert outlook_cursor(owner_conn, automation_id) == {"delta_link": delta_link("D2")}
    assert not any("/me/messages?" in call.request.url for call in responses.calls)


@responses.activate
def test_a_delta_token_graph_no_longer_keeps_is_replaced_by_a_fresh_round_without_doubling(rt, intake_db, agent_db,
                                                                                         owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh_delta(responses.mock, [], "D1")
    poll(rt, client_id, automation_id)
    delta_page(responses.mock, "D1", ["o1"], next_token="D2")
    outlook_search(responses.mock, ["o1"])
    assert poll(rt, client_id, automation_id).started == 1
    gone = responses.mock.get(DELTA, match=[responses.matchers.query_param_matcher({"$deltatoken": "D2"})],
                              status=410, json={"error": {"code": "SyncStateNotFound",
                                                          "message": "The sync state generation is not found."}})
    responses.mock.replace(responses.GET, f"{GRAPH}/me/messages", json={"value": [
        {"id": "o4", "receivedDateTime": "2026-12-03T12:00:00Z"},
        {"id": "o1", "receivedDateTime": "2026-12-03T11:00:00Z"}]})
    responses.mock.remove(responses.GET, DELTA)
    responses.mock.add(gone)
    fresh_delta(responses.mock, ["o1", "o4"], "D3")

    outcome = poll(rt, client_id, automation_id)

    assert gone.call_count == 1
    assert outcome.started == 1  # o4 only: o1 had its run already
    assert poll_runs(owner_conn, automation_id) == [("o1",), ("o4",)]
    assert outlook_cursor(owner_conn, automation_id) == {"delta_link": delta_link("D3")}


@responses.activate
def test_an_outlook_email_deleted_before_its_run_reads_it_fails_the_run_saying_so(rt, intake_db, agent_db,
                                                                                owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh_delta(responses.mock, [], "D1")
    poll(rt, client_id, automation_id)
    delta_page(responses.mock, "D1", ["o9"], next_token="D2")
    outlook_search(responses.mock, ["o9"])
    poll(rt, client_id, automation_id)
    responses.mock.get(f"{GRAPH}/me/messages/o9", status=404, json={"error": {
        "code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}})
    slack = responses.mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1.2"})
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE trigger_item = 'o9'").fetchone()[0]

    assert execute_run(rt, client_id=client_id, run_id=run_id) == "failed"

    assert owner_conn.execute("SELECT error_class, error_message FROM runs WHERE run_id = %s", [run_id]).fetchone() == (
        "trigger_item_gone", "The new item could not be read: The new email was deleted from Outlook before this "
                             "run could read it.")
    assert slack.call_count == 0


@responses.activate
def test_a_graph_link_to_another_host_is_not_followed_and_the_poll_keeps_nothing(rt, intake_db, agent_db,
                                                                               owner_conn):
    client_id, automation_id = outlook_tenant(rt, intake_db, agent_db)
    fresh_delta(responses.mock, [], "D1")
    poll(rt, client_id, automation_id)
    responses.mock.get(DELTA, match=[responses.matchers.query_param_matcher({"$deltatoken": "D1"})], json={
        "value": [{"id": "o1", "receivedDateTime": "2026-12-03T11:00:00Z"}],
        "@odata.nextLink": "https://graph.microsoft.com.attacker.example/v1.0/me/messages/delta?$skiptoken=x"})

    outcome = poll(rt, client_id, automation_id)

    assert outcome.skipped and outcome.started == 0
    assert all(call.request.url.startswith(GRAPH + "/") for call in responses.calls)
    assert outlook_cursor(owner_conn, automation_id) == {"delta_link": delta_link("D1")}
    assert poll_runs(owner_conn, automation_id) == []
