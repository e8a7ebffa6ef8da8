"""The client's automations, runs and costs pages, and the webhook trigger, with the real agent behind them."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import responses
from psycopg.types.json import Jsonb

from agent_service.runs.engine import execute_run
from tests.factories import client_of
from tests.integration.conftest import BASE_URL, PASSWORD, Visitor, new_email
from tests.run_fixtures import DIGEST, G, connect, runtime_for, stand_in_providers

NEW = "/automations/new"
HOOK_URL = re.compile(re.escape(BASE_URL) + r"/hooks/([A-Za-z0-9_-]{43})")


def count(owner_conn, table: str) -> int:
    return owner_conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def press(visitor: Visitor, form: dict[str, str], action: str, *, path: str = NEW, **extra: str):
    """One press of a builder button, posting the whole form as a browser without JavaScript does."""
    return visitor.post(path, {**form, **extra, "action": action}, token_from="/automations")


def digest_form(visitor: Visitor) -> dict[str, str]:
    """The three-step digest as the builder holds it, built one 'Add step' at a time."""
    form = {"name": "Morning digest", "trigger_kind": "manual", "cron": "", "timezone": "UTC"}
    page = press(visitor, form, "add_step", new_capability="gmail.search")
    assert page.status_code == 200
    assert 'name="steps-0-value-query"' in page.get_data(as_text=True)
    form.update({"steps-0-capability": "gmail.search", "steps-0-value-query": "is:unread newer_than:1d",
                 "steps-0-value-max_results": ""})
    page = press(visitor, form, "add_step", new_capability="llm.summarise")
    assert '<option value="steps.0.messages">' in page.get_data(as_text=True)
    form.update({"steps-1-capability": "llm.summarise", "steps-1-value-text": "",
                 "steps-1-ref-text": "steps.0.messages", "steps-1-value-instructions": ""})
    page = press(visitor, form, "add_step", new_capability="slack.post_message")
    body = page.get_data(as_text=True)
    assert '<option value="steps.1.text">' in body
    assert 'name="steps-2-value-channel"' in body
    form.update({"steps-2-capability": "slack.post_message", "steps-2-value-channel": "#support",
                 "steps-2-value-text": "", "steps-2-ref-text": "steps.1.text"})
    return form


def followed(visitor: Visitor, response):
    """The page a post's redirect reaches (post, redirect, get)."""
    assert response.status_code == 303, text_of(response)
    return visitor.get(response.headers["Location"])


def save_digest(visitor: Visitor, owner_conn, **changes: str) -> uuid.UUID:
    form = {**digest_form(visitor), **changes}
    response = press(visitor, form, "save")
    assert response.status_code == 303, text_of(response)
    return uuid.UUID(response.headers["Location"].rsplit("/", 1)[1])


def connect_digest(owner_conn) -> None:
    """Active Google and Slack connections for the (only) signed-up client, as enabling the digest needs."""
    client_id = owner_conn.execute("SELECT client_id FROM users").fetchone()[0]
    for provider, scopes in (("google", [G + "gmail.readonly"]), ("slack", ["chat:write"])):
        owner_conn.execute("INSERT INTO connections (client_id, provider, auth_kind, status, scopes_granted) "
                           "VALUES (%s, %s, 'oauth2', 'active', %s)", [client_id, provider, scopes])


def field_is_marked_invalid(body: str, field_id: str) -> bool:
    tag = re.search(r'<(?:input|textarea|select)[^>]*\bid="' + re.escape(field_id) + r'"[^>]*>', body)
    return tag is not None and 'aria-invalid="true"' in tag.group(0)


def test_a_client_builds_the_three_step_digest_with_the_form_and_it_is_saved_as_version_1(signed_up, owner_conn):
    visitor, email = signed_up
    assert "Add a step" in visitor.get(NEW).get_data(as_text=True)
    automation_id = save_digest(visitor, owner_conn)
    row = owner_conn.execute(
        "SELECT client_id, name, status, version, trigger, steps, webhook_secret_hash FROM automations "
        "WHERE automation_id = %s", [automation_id]).fetchone()
    assert row == (client_of(owner_conn, email), "Morning digest", "draft", 1, {"kind": "manual"},
                   DIGEST["steps"], None)
    versions = owner_conn.execute("SELECT version, steps FROM automation_versions WHERE automation_id = %s",
                                  [automation_id]).fetchall()
    assert versions == [(1, DIGEST["steps"])]
    page = text_of(visitor.get(f"/automations/{automation_id}"))
    assert "The automation was saved." in page
    for shown in ("Search emails", "Summarise with Claude", "Post to Slack", "is:unread newer_than:1d",
                  "Step 1 (Search emails): Messages", "Step 2 (Summarise with Claude): Text"):
        assert shown in page
    assert "Morning digest" in text_of(visitor.get("/automations"))


@pytest.mark.parametrize(
    ("case", "changes", "field_id", "message"),
    [
        ("unknown capability", {"steps-0-capability": "gmail.delete_everything"}, None,
         "Choose a capability from the list."),
        ("missing required input", {"steps-0-value-query": ""}, "steps-0-value-query", "This is required."),
        ("channel without #", {"steps-2-value-channel": "support"}, "steps-2-value-channel",
         "A Slack channel starts with # and is lowercase, like #accounts"),
        ("reference to a later step", {"steps-1-ref-text": "steps.2.text"}, "steps-1-ref-text",
         "A step can only use the output of an earlier step."),
        ("bad cron", {"trigger_kind": "schedule", "cron": "every morning at eight"}, "cron",
         "a schedule needs five fields (minute, hour, day of month, month, day of week), like 0 8 * * 1-5"),
        ("schedule too often", {"trigger_kind": "schedule", "cron": "* * * * *"}, "cron",
         "A schedule may run at most every five minutes: put */5 or a longer step in the minute field"),
        ("not a number", {"steps-0-value-max_results": "twenty"}, "steps-0-value-max_results",
         "Not a valid integer."),
        ("no name", {"name": "  "}, "name", "This is required."),
    ],
)
def test_an_invalid_automation_gets_400_with_the_field_message_and_nothing_is_saved(
    signed_up, owner_conn, case, changes, field_id, message
):
    visitor, _ = signed_up
    form = {**digest_form(visitor), **changes}
    response = press(visitor, form, "save")
    body = response.get_data(as_text=True)
    assert response.status_code == 400, case
    assert "The automation was not saved." in html.unescape(body)
    assert message in html.unescape(body), case
    if field_id:
        assert field_is_marked_invalid(body, field_id), case
    assert count(owner_conn, "automations") == 0
    assert count(owner_conn, "automation_versions") == 0


def test_a_form_without_steps_or_with_unreadable_json_is_refused_and_saves_nothing(signed_up, owner_conn):
    visitor, _ = signed_up
    response = press(visitor, {"name": "Nothing to do", "trigger_kind": "manual"}, "save")
    assert response.status_code == 400
    assert "Add at least one step." in text_of(response)
    form = {"name": "Append", "trigger_kind": "manual", "steps-0-capability": "sheets.append",
            "steps-0-value-spreadsheet_id": "1AbCdEfGhIjKlMnOp", "steps-0-value-range": "Sheet1!A1",
            "steps-0-value-rows": "[[1, 2], [3"}
    response = press(visitor, form, "save")
    assert response.status_code == 400
    assert "Enter valid JSON." in text_of(response)
    assert field_is_marked_invalid(response.get_data(as_text=True), "steps-0-value-rows")
    assert count(owner_conn, "automations") == 0


def test_removing_a_step_renumbers_the_references_after_it(signed_up):
    visitor, _ = signed_up
    form = digest_form(visitor)
    body = press(visitor, form, "remove:0").get_data(as_text=True)
    assert "Step 1: Summarise with Claude" in html.unescape(body)
    assert 'name="steps-2-capability"' not in body
    # Step 2 used the removed step's output: it falls back to a typed value; step 3 now reads step 1.
    summary_ref = re.search(r'<select id="steps-0-ref-text".*?</select>', body, re.S)
    assert summary_ref is None or " selected" not in summary_ref.group(0)
    slack_ref = re.search(r'<select id="steps-1-ref-text".*?</select>', body, re.S)
    assert slack_ref is not None and '<option value="steps.0.text" selected>' in slack_ref.group(0)


def test_editing_saves_version_2_and_keeps_version_1(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    edit = f"/automations/{automation_id}/edit"
    page = visitor.get(edit).get_data(as_text=True)
    assert 'value="is:unread newer_than:1d"' in page
    assert '<option value="steps.0.messages" selected>' in page
    form = {**digest_form(visitor), "steps-0-value-query": "label:support is:unread", "name": "Support digest"}
    response = press(visitor, form, "save", path=edit)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/automations/{automation_id}"
    assert owner_conn.execute("SELECT name, version FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == ("Support digest", 2)
    versions = owner_conn.execute(
        "SELECT version, steps -> 0 -> 'input' ->> 'query' FROM automation_versions WHERE automation_id = %s "
        "ORDER BY version", [automation_id]).fetchall()
    assert versions == [(1, "is:unread newer_than:1d"), (2, "label:support is:unread")]
    assert "Your changes were saved as a new version." in text_of(visitor.get(f"/automations/{automation_id}"))


def test_an_invalid_edit_keeps_the_saved_version(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    edit = f"/automations/{automation_id}/edit"
    response = press(visitor, {**digest_form(visitor), "steps-2-value-channel": "not a channel"}, "save", path=edit)
    assert response.status_code == 400
    assert field_is_marked_invalid(response.get_data(as_text=True), "steps-2-value-channel")
    assert owner_conn.execute("SELECT version FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (1,)
    assert count(owner_conn, "automation_versions") == 1


def status_of(owner_conn, automation_id) -> str:
    return owner_conn.execute("SELECT status FROM automations WHERE automation_id = %s", [automation_id]).fetchone()[0]


def test_a_client_enables_and_disables_an_automation(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    response = visitor.post(f"{page}/enable", token_from=page)
    assert response.status_code == 303
    assert status_of(owner_conn, automation_id) == "enabled"
    assert "The automation is enabled." in text_of(visitor.get(page))
    assert visitor.post(f"{page}/disable", token_from=page).status_code == 303
    assert status_of(owner_conn, automation_id) == "disabled"
    assert ">Enable</button>" in visitor.get(page).get_data(as_text=True)


def test_run_now_queues_a_run_and_its_job_through_the_agent(signed_up, owner_conn, agent_transport):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    page = f"/automations/{automation_id}"
    response = visitor.post(f"{page}/run", token_from=page)
    assert response.status_code == 303
    assert ("POST", f"/v1/clients/{client_of(owner_conn, visitor_email(owner_conn))}/automations/"
                    f"{automation_id}/runs") in agent_transport.calls
    runs = owner_conn.execute("SELECT run_id, trigger_kind, status, automation_version FROM runs").fetchall()
    assert [(kind, status, version) for _, kind, status, version in runs] == [("manual", "queued", 1)]
    assert owner_conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:execute_run' AND queueing_lock = %s",
        [f"run:{runs[0][0]}"]).fetchone() == (1,)
    body = text_of(visitor.get(page))
    assert "The run is queued." in body
    assert f"/runs/{runs[0][0]}" in body
    assert f"/runs/{runs[0][0]}" in visitor.get("/runs").get_data(as_text=True)


def visitor_email(owner_conn) -> str:
    return owner_conn.execute("SELECT email FROM users").fetchone()[0]


def test_run_now_on_a_paused_automation_says_why_and_starts_nothing(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = %s WHERE automation_id = %s",
                       ["Google Workspace needs to be reconnected.", automation_id])
    page = f"/automations/{automation_id}"
    response = visitor.post(f"{page}/run", token_from=page)
    body = text_of(response)
    assert response.status_code == 409
    assert "This automation is paused, so it did not run." in body
    assert "Google Workspace needs to be reconnected." in body
    assert count(owner_conn, "runs") == 0


def test_run_now_over_this_months_budget_says_so_and_starts_nothing(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 0")
    page = f"/automations/{automation_id}"
    response = visitor.post(f"{page}/run", token_from=page)
    assert response.status_code == 409
    assert "This month's budget is used up, so the run was not started." in text_of(response)
    assert count(owner_conn, "runs") == 0


def test_run_now_when_the_agent_is_down_says_nothing_started(signed_up, owner_conn, agent_transport):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    agent_transport.fail_with = 503
    page = f"/automations/{automation_id}"
    response = visitor.post(f"{page}/run", token_from=page)
    assert response.status_code == 503
    assert "Nothing was started" in text_of(response)


@pytest.fixture
def victims_automation(intake_app, owner_conn):
    """Another client's saved digest, and a signed-in thief."""
    victim = Visitor(intake_app, address="192.0.2.10")
    assert victim.signup(new_email(), PASSWORD, business_name="Victim Ltd").status_code == 303
    automation_id = save_digest(victim, owner_conn, name="Victim secret digest")
    thief = Visitor(intake_app, address="192.0.2.11")
    assert thief.signup(new_email(), PASSWORD, business_name="Thief Ltd").status_code == 303
    return thief, automation_id


def test_another_clients_automation_is_404_to_view_edit_enable_and_run(victims_automation, owner_conn,
                                                                       agent_transport):
    thief, automation_id = victims_automation
    page = f"/automations/{automation_id}"
    before = owner_conn.execute("SELECT status, version, name FROM automations WHERE automation_id = %s",
                                [automation_id]).fetchone()
    agent_transport.calls.clear()
    for path in (page, f"{page}/edit"):
        response = thief.get(path)
        assert response.status_code == 404, path
        assert "Victim secret digest" not in response.get_data(as_text=True)
    form = {**digest_form(thief), "name": "Stolen"}
    assert press(thief, form, "save", path=f"{page}/edit").status_code == 404
    for action in ("enable", "disable", "run", "webhook"):
        response = thief.post(f"{page}/{action}", token_from="/automations")
        assert response.status_code == 404, action
        assert "Victim secret digest" not in response.get_data(as_text=True)
    assert owner_conn.execute("SELECT status, version, name FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == before
    assert count(owner_conn, "runs") == 0
    assert not [call for call in agent_transport.calls if "/runs" in call[1]]


@pytest.mark.parametrize("action", ["enable", "disable", "run", "webhook", "edit", "duplicate", "archive", "restore",
                                    "delete"])
def test_a_forged_automation_post_without_a_token_changes_nothing(signed_up, owner_conn, agent_transport, action):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    agent_transport.calls.clear()
    response = visitor.client.post(f"/automations/{automation_id}/{action}", data={"action": "save", "name": "x"},
                                   base_url=BASE_URL, headers={"Referer": BASE_URL + "/"})
    assert response.status_code == 400
    assert owner_conn.execute("SELECT status, version FROM automations").fetchone() == ("draft", 1)
    assert agent_transport.calls == []


def test_a_forged_new_automation_is_not_created(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "action": "save"}
    response = visitor.client.post(NEW, data=form, base_url=BASE_URL, headers={"Referer": BASE_URL + "/"})
    assert response.status_code == 400
    assert count(owner_conn, "automations") == 0


def access_section(body: str) -> str:
    match = re.search(r'<section class="card" aria-labelledby="access">(.*?)</section>', body, re.S)
    assert match is not None
    return match.group(1)


def test_the_scopes_needed_are_exactly_the_minimal_ones_per_provider_against_what_was_granted(
    signed_up, owner_conn, agent_db
):
    from tests.factories import make_connection

    visitor, email = signed_up
    automation_id = save_digest(visitor, owner_conn)
    section = access_section(visitor.get(f"/automations/{automation_id}").get_data(as_text=True))
    assert re.findall(r"<code>([^<]+)</code>", section) == [G + "gmail.readonly", "chat:write"]
    assert re.findall(r"<h3>([^<]+?)\s*<", section) == ["Google Workspace", "Slack"]
    assert "Anthropic" not in section  # Hapex's own sub-processor: nothing for the client to grant
    assert section.count('action="/connections/google/connect"') == 1
    assert section.count('action="/connections/slack/connect"') == 1
    assert section.count(f'name="automation_id" value="{automation_id}"') == 2
    assert section.count(">Connect</button>") == 2

    client_id = client_of(owner_conn, email)
    make_connection(agent_db, client_id, provider="google", scopes=[G + "gmail.metadata"])
    section = access_section(visitor.get(f"/automations/{automation_id}").get_data(as_text=True))
    assert ">Grant missing access</button>" in section
    assert "not granted" in section

    make_connection(agent_db, client_id, provider="google", scopes=[G + "gmail.readonly"])
    make_connection(agent_db, client_id, provider="slack", scopes=["chat:write"])
    section = access_section(visitor.get(f"/automations/{automation_id}").get_data(as_text=True))
    assert "not granted" not in section
    assert "</button>" not in section
    assert section.count(">granted<") == 2


def test_a_paused_automation_shows_why_and_a_reconnect_button(signed_up, owner_conn, agent_db):
    from tests.factories import make_connection

    visitor, email = signed_up
    automation_id = save_digest(visitor, owner_conn)
    make_connection(agent_db, client_of(owner_conn, email), provider="google", status="needs_reauth",
                    scopes=[G + "gmail.readonly"])
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = %s WHERE automation_id = %s",
                       ["Google Workspace needs to be reconnected.", automation_id])
    body = text_of(visitor.get(f"/automations/{automation_id}"))
    assert "This automation is paused: Google Workspace needs to be reconnected." in body
    assert ">Reconnect</button>" in access_section(body)


def hook(intake_app, path: str, method: str = "POST", **kwargs):
    """A call from another system: no cookie, no CSRF token."""
    return intake_app.test_client().open(path, method=method, base_url=BASE_URL,
                                         environ_base={"REMOTE_ADDR": "198.51.100.20"}, **kwargs)


def test_a_webhook_url_is_shown_once_only_its_hash_is_stored_and_it_queues_runs(
    signed_up, owner_conn, intake_app, caplog
):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "trigger_kind": "webhook"}
    saved = followed(visitor, press(visitor, form, "save"))
    assert saved.status_code == 200
    assert saved.headers["Cache-Control"] == "no-store"
    match = HOOK_URL.search(saved.get_data(as_text=True))
    assert match, "the URL is shown on the page the save redirects to"
    assert "/hooks/" not in saved.headers.get("Set-Cookie", "")
    secret = match.group(1)
    automation_id, stored = owner_conn.execute("SELECT automation_id, webhook_secret_hash FROM automations").fetchone()
    assert bytes(stored) == hashlib.sha256(secret.encode()).digest()
    everything = owner_conn.execute("SELECT row_to_json(a)::text FROM automations a").fetchone()[0]
    everything += str(owner_conn.execute("SELECT * FROM automation_versions").fetchall())
    assert secret not in everything
    page = f"/automations/{automation_id}"
    assert secret not in visitor.get(page).get_data(as_text=True)
    assert "/hooks/" not in visitor.get(page).get_data(as_text=True)

    caplog.set_level(logging.DEBUG)
    draft = hook(intake_app, f"/hooks/{secret}", data=b'{"hello": "world"}', content_type="application/json")
    assert draft.status_code == 404  # not enabled yet
    connect_digest(owner_conn)
    assert visitor.post(f"{page}/enable", token_from=page).status_code == 303
    started = hook(intake_app, f"/hooks/{secret}", data=b"ignored")
    assert started.status_code == 202
    run_id = started.json["run_id"]
    assert set(started.json) == {"run_id"}
    assert owner_conn.execute("SELECT trigger_kind, status FROM runs WHERE run_id = %s", [run_id]).fetchone() == (
        "webhook", "queued")
    assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s",
                              [f"run:{run_id}"]).fetchone() == (1,)
    assert hook(intake_app, f"/hooks/{secret}", method="GET").status_code == 405
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "/hooks/<secret>" in logged
    assert secret not in logged


def _cookie_encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("="), secret[:20], secret[-20:]]


def test_the_new_webhook_address_is_not_in_the_session_cookie_in_any_encoding(signed_up, owner_conn, intake_app):
    visitor, _ = signed_up
    posted = press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save")
    assert posted.status_code == 303
    cookies = [value for name, value in posted.headers.items() if name == "Set-Cookie"]
    session_cookie = next(c for c in cookies if c.startswith(intake_app.config.get("SESSION_COOKIE_NAME", "session")))
    value = session_cookie.split(";", 1)[0].split("=", 1)[1]
    opened = intake_app.session_interface.get_signing_serializer(intake_app).loads(value)
    assert "webhook_reveal" in opened  # the pad is there; the address is not
    shown = followed(visitor, posted)
    secret = HOOK_URL.search(shown.get_data(as_text=True)).group(1)
    held = value + json.dumps(opened) + "".join(cookies)
    for encoded in _cookie_encodings(secret):
        assert encoded not in held
    pad = bytes.fromhex(opened["webhook_reveal"]["pad"])
    assert bytes(a ^ b for a, b in zip(secret.encode(), pad, strict=True)) != secret.encode()
    # Read once: the row is gone, so neither the cookie's pad nor a dump can rebuild the address.
    assert owner_conn.execute("SELECT count(*) FROM webhook_reveals").fetchone() == (0,)
    everything = str(owner_conn.execute("SELECT * FROM automations").fetchall())
    assert not any(encoded in everything for encoded in _cookie_encodings(secret))


def test_a_wrong_secret_and_a_disabled_automation_get_the_same_404(signed_up, owner_conn, intake_app):
    visitor, _ = signed_up
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    secret = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    visitor.post(f"{page}/enable", token_from=page)
    wrong = hook(intake_app, f"/hooks/{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}")
    visitor.post(f"{page}/disable", token_from=page)
    disabled = hook(intake_app, f"/hooks/{secret}")
    assert wrong.status_code == disabled.status_code == 404
    assert wrong.get_data() == disabled.get_data()
    assert wrong.json["error"] == "not_found"
    assert count(owner_conn, "runs") == 0


def test_a_new_webhook_url_replaces_the_old_one(signed_up, owner_conn, intake_app):
    visitor, _ = signed_up
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    old = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    visitor.post(f"{page}/enable", token_from=page)
    renewed = followed(visitor, visitor.post(f"{page}/webhook", token_from=page))
    new = HOOK_URL.search(renewed.get_data(as_text=True)).group(1)
    assert new != old
    assert hook(intake_app, f"/hooks/{old}").status_code == 404
    assert hook(intake_app, f"/hooks/{new}").status_code == 202


def test_a_trigger_that_is_no_longer_a_webhook_forgets_its_url(signed_up, owner_conn, intake_app):
    visitor, _ = signed_up
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    secret = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    edit = f"/automations/{automation_id}/edit"
    assert press(visitor, {**digest_form(visitor), "trigger_kind": "manual"}, "save", path=edit).status_code == 303
    assert owner_conn.execute("SELECT webhook_secret_hash FROM automations").fetchone() == (None,)
    connect_digest(owner_conn)
    visitor.post(f"/automations/{automation_id}/enable", token_from="/automations")
    assert hook(intake_app, f"/hooks/{secret}").status_code == 404


def test_a_webhook_called_too_often_is_refused_with_429(signed_up, owner_conn, intake_app):
    from intake.automations.hooks import RUNS_PER_WINDOW

    visitor, _ = signed_up
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    secret = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    connect_digest(owner_conn)
    visitor.post(f"/automations/{automation_id}/enable", token_from="/automations")
    for _ in range(RUNS_PER_WINDOW):
        assert hook(intake_app, f"/hooks/{secret}").status_code == 202
    refused = hook(intake_app, f"/hooks/{secret}")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert count(owner_conn, "runs") == RUNS_PER_WINDOW


def test_an_address_guessing_webhook_secrets_is_locked_out(intake_app):
    from intake.accounts.throttle import ADDRESS_LIMIT

    for _ in range(ADDRESS_LIMIT):
        assert hook(intake_app, f"/hooks/{uuid.uuid4().hex}").status_code == 404
    assert hook(intake_app, f"/hooks/{uuid.uuid4().hex}").status_code == 429


def test_a_webhook_body_over_the_limit_is_refused_unread(intake_app):
    response = hook(intake_app, "/hooks/anything", data=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413


def add_cost(owner_conn, client_id, *, source: str, amount: int, when: datetime, calls: int = 1) -> None:
    owner_conn.execute(
        "INSERT INTO cost_events (client_id, source, provider, amount_microusd, calls, occurred_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [client_id, source, "anthropic" if source == "llm" else "google", amount, calls, when])


def month_before(moment: datetime, months: int) -> datetime:
    year, month = moment.year, moment.month - months
    while month < 1:
        year, month = year - 1, month + 12
    return moment.replace(year=year, month=month, day=15)


def test_the_costs_page_sums_cost_events_per_month_and_source_and_draws_an_svg_chart(signed_up, owner_conn):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    now = datetime.now(UTC)
    this_month, last_month = now.replace(day=1, hour=0, minute=1), month_before(now, 1)
    add_cost(owner_conn, client_id, source="llm", amount=1_500_000, when=this_month)
    add_cost(owner_conn, client_id, source="llm", amount=250_000, when=this_month)
    add_cost(owner_conn, client_id, source="provider_call", amount=0, when=this_month, calls=7)
    add_cost(owner_conn, client_id, source="llm", amount=3_000_000, when=last_month)
    add_cost(owner_conn, client_id, source="llm", amount=99_000_000, when=month_before(now, 13))
    other = uuid.uuid4()
    owner_conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, 'Other')", [other])
    add_cost(owner_conn, other, source="llm", amount=42_000_000, when=this_month)

    response = visitor.get("/costs")
    body = text_of(response)
    assert response.status_code == 200
    assert re.search(r"<svg class=\"chart\"[^>]*role=\"img\"", body)
    assert "style=" not in body  # the CSP allows no inline styles
    rows = dict(re.findall(r'<th scope="row">(\d{4}-\d{2})</th>(.*?)</tr>', body, re.S))
    assert len(rows) == 12
    this_key, last_key = f"{now:%Y-%m}", f"{last_month:%Y-%m}"
    assert re.findall(r"<td>([^<]*)</td>", rows[this_key]) == ["$1.75", "$0.00", "$0.00", "9", "$1.75"]
    assert re.findall(r"<td>([^<]*)</td>", rows[last_key]) == ["$3.00", "$0.00", "$0.00", "1", "$3.00"]
    assert "$99.00" not in body and "$42.00" not in body and "$43.75" not in body
    bars = re.findall(r'<rect class="chart-bar chart-(\w+)"[^>]*height="([\d.]+)"', body)
    assert sorted(bars) == sorted([("llm", "166.0"), ("llm", str(round(166 * 1.75 / 3, 2)))])
    assert "Spent this month</dt><dd>$1.75" in body
    detail = body.split('id="this-month"')[1]
    assert "<td>Google Workspace</td>" in detail and "<td>google</td>" not in detail  # named, not by key


def test_the_run_pages_show_metadata_and_no_content(signed_up, owner_conn, agent_db, intake_db):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    automation_id = save_digest(visitor, owner_conn)
    rt = runtime_for(agent_db)
    connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"])
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/run", token_from=page).status_code == 303
    run_id = owner_conn.execute("SELECT run_id FROM runs").fetchone()[0]
    canaries = ("CANARY-EMAIL-4f1c9e", "CANARY-SUMMARY-77ab02")
    with responses.RequestsMock() as mock:
        stand_in_providers(mock, email_body=canaries[0], llm_reply=canaries[1])
        assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"
    listing = text_of(visitor.get("/runs"))
    detail = text_of(visitor.get(f"/runs/{run_id}"))
    assert "Morning digest" in listing and "succeeded" in listing
    for expected in ("gmail.search", "llm.summarise", "slack.post_message", "messages: 2", "manual",
                     "Automation version</dt><dd>1"):
        assert expected in detail, expected
    assert detail.count('<span class="status status-succeeded">succeeded</span>') == 4
    for page_text in (listing, detail, text_of(visitor.get(page)), text_of(visitor.get("/costs"))):
        for canary in canaries:
            assert canary not in page_text


def test_only_the_intake_may_look_up_a_webhook_and_it_learns_ids_only(database, intake_db, agent_db):
    import psycopg

    from shared.db import PermissionDenied

    with intake_db.transaction() as conn:
        columns = conn.execute("SELECT * FROM hapex_find_webhook(%s)", [b"\0" * 32])
        assert [c.name for c in columns.description] == ["client_id", "automation_id"]
    with pytest.raises((PermissionDenied, psycopg.errors.InsufficientPrivilege)), agent_db.transaction() as conn:
        conn.execute("SELECT * FROM hapex_find_webhook(%s)", [b"\0" * 32])


def test_the_agent_starts_a_run_for_an_optional_trigger_and_refuses_any_other_body(
    signed_up, owner_conn, agent_transport
):
    from tests.agent_api import with_proof
    from tests.integration.conftest import AGENT_TOKEN

    visitor, email = signed_up
    automation_id = save_digest(visitor, owner_conn)
    path = f"/v1/clients/{client_of(owner_conn, email)}/automations/{automation_id}/runs"
    api = agent_transport.client
    # What the intake sends for this visitor: the token and the session its cookie carries.
    headers = with_proof({"Authorization": f"Bearer {AGENT_TOKEN}"}, "session", visitor.session_cookie())
    for body in ({"trigger": "schedule"}, {"trigger": "manual", "when": "now"}, ["webhook"]):
        refused = api.post(path, json=body, headers=headers)
        assert refused.status_code == 400, body
        assert refused.json["error"] == "validation_failed"
    assert api.post(path, data="{not json", content_type="application/json", headers=headers).status_code == 400
    not_enabled = api.post(path, json={"trigger": "webhook"}, headers=headers)
    assert not_enabled.status_code == 409
    assert not_enabled.json["error"] == "run_refused"
    assert count(owner_conn, "runs") == 0
    assert api.post(path, headers=headers).status_code == 202
    assert owner_conn.execute("SELECT trigger_kind FROM runs").fetchall() == [("manual",)]


def test_the_webhook_url_is_built_on_the_public_url_not_the_requests_host(database, intake_db, agent_transport):
    from tests.integration.conftest import build_intake_app

    app = build_intake_app(database, intake_db, agent_transport, public_url="https://app.hapex.example")
    visitor = Visitor(app)
    assert visitor.signup(new_email(), PASSWORD).status_code == 303
    saved = followed(visitor, press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save"))
    assert re.search(r"https://app\.hapex\.example/hooks/[A-Za-z0-9_-]{43}<", saved.get_data(as_text=True))
    assert BASE_URL + "/hooks/" not in saved.get_data(as_text=True)


def test_enabling_names_each_missing_or_broken_connection_with_a_link_and_refuses_until_they_are_there(
        signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    client_id = owner_conn.execute("SELECT client_id FROM users").fetchone()[0]
    owner_conn.execute("INSERT INTO connections (client_id, provider, auth_kind, status, scopes_granted) "
                       "VALUES (%s, 'slack', 'oauth2', 'needs_reauth', %s)", [client_id, ["chat:write"]])
    page = f"/automations/{automation_id}"
    refused = visitor.post(f"{page}/enable", token_from=page)
    assert refused.status_code == 409
    body = refused.get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", text_of(refused))
    assert "Not enabled yet: it needs these connections first." in text
    assert "Google Workspace: not connected — connect Google Workspace" in text
    assert "Slack: needs reconnecting — reconnect Slack" in text
    assert 'href="#need-google"' in body and 'id="need-google"' in body
    assert status_of(owner_conn, automation_id) == "draft"
    owner_conn.execute("DELETE FROM connections")
    connect_digest(owner_conn)
    assert visitor.post(f"{page}/enable", token_from=page).status_code == 303
    assert status_of(owner_conn, automation_id) == "enabled"


def test_saving_a_webhook_automation_redirects_so_a_reload_neither_saves_twice_nor_shows_the_address_again(
        signed_up, owner_conn):
    visitor, _ = signed_up
    response = press(visitor, {**digest_form(visitor), "trigger_kind": "webhook"}, "save")
    assert response.status_code == 303
    assert HOOK_URL.search(response.get_data(as_text=True)) is None
    first = visitor.get(response.headers["Location"])
    assert HOOK_URL.search(first.get_data(as_text=True))
    reloaded = visitor.get(response.headers["Location"])
    assert HOOK_URL.search(reloaded.get_data(as_text=True)) is None
    assert count(owner_conn, "automations") == 1


def test_a_schedule_just_enabled_shows_its_next_run_before_the_scheduler_plans_it(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "trigger_kind": "schedule", "cron": "0 8 * * *", "timezone": "UTC"}
    followed(visitor, press(visitor, form, "save"))
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    assert visitor.post(f"{page}/enable", token_from=page).status_code == 303
    assert owner_conn.execute("SELECT next_run_at FROM automations").fetchone() == (None,)
    shown = re.search(r"<dt>Next run</dt><dd>([^<]*)</dd>", visitor.get(page).get_data(as_text=True))
    assert shown and "08:00" in shown.group(1), shown


def test_a_paused_schedule_shows_no_next_run(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "trigger_kind": "schedule", "cron": "0 8 * * *", "timezone": "UTC"}
    followed(visitor, press(visitor, form, "save"))
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = 'Slack was disconnected.', "
                       "next_run_at = now() + interval '1 day' WHERE automation_id = %s", [automation_id])
    shown = re.search(r"<dt>Next run</dt><dd>([^<]*)</dd>", visitor.get(f"/automations/{automation_id}")
                      .get_data(as_text=True))
    assert shown and shown.group(1) == "none while it is paused", shown


def test_a_poll_run_shows_its_sources_title_as_its_trigger_not_the_word_poll(signed_up, owner_conn):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    automation_id = save_digest(visitor, owner_conn)
    owner_conn.execute("UPDATE automation_versions SET trigger = %s WHERE automation_id = %s AND version = 1",
                       [Jsonb({"kind": "poll", "source": "outlook.new_email", "every_minutes": 5,
                               "options": {}}), automation_id])
    run_id = owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, trigger_item) "
        "VALUES (%s, %s, 1, 'poll', 'AAMk-1') RETURNING run_id", [client_id, automation_id]).fetchone()[0]

    for path in ("/runs", f"/runs/{run_id}", f"/automations/{automation_id}"):
        body = text_of(visitor.get(path))
        assert "New email in Outlook" in body, path
        assert not re.search(r">\s*poll\s*<", body), path
