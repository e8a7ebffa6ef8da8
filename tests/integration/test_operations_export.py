"""The data export, notices and credential use as a client sees them in the intake: all of their
own rows, none of anyone else's, and never a credential."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
import responses

from agent_service.runs.engine import execute_run
from agent_service.runs.triggers import start_run
from shared.db import tenant_transaction
from tests.factories import client_of
from tests.integration.conftest import PASSWORD, Visitor, new_email
from tests.run_fixtures import DIGEST, G, automation, connect, runtime_of, stand_in_providers

# Archive section -> (table, id column) it must hold every row of.
SECTIONS = {
    "users": ("users", "user_id"),
    "account_emails": ("account_emails", "email_id"),
    "automations": ("automations", "automation_id"),
    "automation_versions": ("automation_versions", "automation_id::text || ':' || version"),
    "connections": ("connections", "connection_id"),
    "runs": ("runs", "run_id"),
    "run_steps": ("run_steps", "run_id::text || ':' || step_index"),
    "cost_events": ("cost_events", "cost_event_id"),
    "monthly_costs": ("monthly_costs",
                      "to_char(month, 'YYYY-MM') || ':' || source || ':' || provider || ':' || coalesce(model, '')"),
    "chat_drafts": ("chat_drafts", "draft_id"),
    "chat_messages": ("chat_messages", "message_id"),
    "notifications": ("notifications", "notification_id"),
    "credential_access": ("credential_access", "access_id"),
}


def archive_ids(section: str, rows: list[dict]) -> set[str]:
    if section == "automation_versions":
        return {f"{row['automation_id']}:{row['version']}" for row in rows}
    if section == "run_steps":
        return {f"{row['run_id']}:{row['step_index']}" for row in rows}
    if section == "monthly_costs":
        return {f"{row['month']}:{row['source']}:{row['provider']}:{row['model'] or ''}" for row in rows}
    return {row[SECTIONS[section][1]] for row in rows}


def table_ids(owner_conn, section: str, client_id: uuid.UUID) -> set[str]:
    table, key = SECTIONS[section]
    return {str(row[0]) for row in owner_conn.execute(
        f"SELECT {key} FROM {table} WHERE client_id = %s", [client_id])}  # noqa: S608


def signed_up_client(app, owner_conn, business_name: str) -> tuple[Visitor, uuid.UUID, str]:
    visitor = Visitor(app)
    email = new_email()
    assert visitor.signup(email, PASSWORD, business_name=business_name).status_code == 303
    client_id = client_of(owner_conn, email)
    return visitor, client_id, email


def fill_account(rt, intake_db, agent_db, owner_conn, client_id: uuid.UUID, canary: str) -> dict[str, str]:
    """Rows in every table a client has: a run through real steps, chat, notices, audit rows."""
    google, google_tokens = connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"])
    slack, slack_tokens = connect(rt, agent_db, client_id, "slack", ["chat:write"])
    owner_conn.execute("UPDATE connections SET account_label = %s WHERE connection_id = %s",
                       [f"{canary}-label", google])
    automation_id = automation(intake_db, client_id, {**DIGEST, "store_outputs": True})
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1 WHERE client_id = %s", [client_id])
    with responses.RequestsMock() as mock:
        stand_in_providers(mock, email_body=f"{canary}-email-body", llm_reply=f"{canary}-summary")
        with tenant_transaction(rt.db, client_id) as conn:
            started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
        assert execute_run(rt, client_id=client_id, run_id=started.run_id) == "succeeded"
    draft = owner_conn.execute("INSERT INTO chat_drafts (client_id) VALUES (%s) RETURNING draft_id",
                               [client_id]).fetchone()[0]
    for role, text in (("client", f"{canary}-please summarise my mail"), ("assistant", "Here is a proposal.")):
        owner_conn.execute("INSERT INTO chat_messages (client_id, draft_id, role, content) VALUES (%s, %s, %s, %s)",
                           [client_id, draft, role, text])
    ciphertexts = [row[0].hex() for row in owner_conn.execute(
        "SELECT ciphertext FROM credentials WHERE client_id = %s", [client_id])]
    nonces = [row[0].hex() for row in owner_conn.execute(
        "SELECT nonce FROM credentials WHERE client_id = %s", [client_id])]
    for sealed, nonce in owner_conn.execute("SELECT output_ciphertext, output_nonce FROM run_steps "
                                            "WHERE client_id = %s AND output_ciphertext IS NOT NULL", [client_id]):
        ciphertexts.append(sealed.hex())
        nonces.append(nonce.hex())
    return {"google": str(google), "slack": str(slack), "automation": str(automation_id),
            "run": str(started.run_id), "tokens": [*google_tokens.values(), *slack_tokens.values()],
            "ciphertexts": ciphertexts, "nonces": nonces}


@pytest.fixture
def two_accounts(intake_app, agent_service_app, intake_db, agent_db, owner_conn):
    rt = runtime_of(agent_service_app, agent_db)
    mine_visitor, mine, _ = signed_up_client(intake_app, owner_conn, "Mine Bakery")
    theirs_visitor, theirs, theirs_email = signed_up_client(intake_app, owner_conn, "Theirs Garage")
    mine_rows = fill_account(rt, intake_db, agent_db, owner_conn, mine, "mine")
    theirs_canary = f"theirs-{secrets.token_hex(4)}"
    theirs_rows = fill_account(rt, intake_db, agent_db, owner_conn, theirs, theirs_canary)
    return {"rt": rt, "mine": (mine_visitor, mine, mine_rows),
            "theirs": (theirs_visitor, theirs, theirs_rows, theirs_email, theirs_canary)}


def test_the_export_holds_every_row_of_the_client_and_no_row_of_another(two_accounts, owner_conn):
    visitor, mine, mine_rows = two_accounts["mine"]
    _, theirs, theirs_rows, theirs_email, theirs_canary = two_accounts["theirs"]

    response = visitor.get("/account/export")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="hapex-export-')
    assert response.headers["Cache-Control"] == "no-store"
    archive = json.loads(response.get_data(as_text=True))
    assert archive["format"] == "hapex-account-export/1"
    assert archive["client"]["client_id"] == str(mine) and archive["client"]["name"] == "Mine Bakery"
    for section in SECTIONS:
        expected = table_ids(owner_conn, section, mine)
        assert expected, f"the fixture left {section} empty"
        assert archive_ids(section, archive[section]) == expected, section
    text = response.get_data(as_text=True)
    for foreign in (str(theirs), theirs_email, theirs_canary, theirs_rows["google"], theirs_rows["run"],
                    theirs_rows["automation"]):
        assert foreign not in text
    # The step outputs the client chose to store, opened by the agent: every one, and readable.
    stored = archive["stored_step_outputs"]
    assert [(o["run_id"], o["step_index"], o["capability"]) for o in stored] == [
        (mine_rows["run"], 0, "gmail.search"), (mine_rows["run"], 1, "llm.summarise"),
        (mine_rows["run"], 2, "slack.post_message")]
    assert stored[1]["output"]["text"] == "mine-summary"


def test_no_export_is_made_when_the_stored_outputs_cannot_be_read(two_accounts, agent_transport):
    visitor, _, _ = two_accounts["mine"]
    agent_transport.fail_with = 503
    response = visitor.get("/account/export")
    assert response.status_code == 503
    assert "no export was made" in response.get_data(as_text=True)
    assert "Content-Disposition" not in response.headers


def test_a_client_storing_no_outputs_is_exported_without_asking_the_agent(two_accounts, agent_transport,
                                                                           owner_conn):
    visitor, mine, _ = two_accounts["mine"]
    with owner_conn.transaction():
        owner_conn.execute("SELECT set_config('app.client_id', %s, true)", [str(mine)])
        owner_conn.execute("UPDATE automations SET store_outputs = false WHERE client_id = %s", [mine])
    agent_transport.fail_with = 503
    response = visitor.get("/account/export")
    assert response.status_code == 200
    assert json.loads(response.get_data(as_text=True))["stored_step_outputs"] == []
    assert not [call for call in agent_transport.calls if call[1].endswith("/outputs")]


def test_the_export_holds_no_credential_ciphertext_nonce_key_id_or_password_hash(two_accounts, owner_conn):
    visitor, mine, rows = two_accounts["mine"]
    text = visitor.get("/account/export").get_data(as_text=True)
    archive = json.loads(text)

    def keys(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    found = set(keys(archive))
    assert not found & {"ciphertext", "nonce", "key_id", "output_ciphertext", "output_nonce", "output_key_id",
                        "password_hash", "secret_hint", "webhook_secret_hash", "session_hash"}
    key_ids = {row[0] for row in owner_conn.execute("SELECT DISTINCT key_id FROM credentials")}
    for secret in [*rows["tokens"], *rows["ciphertexts"], *rows["nonces"], *key_ids, "$argon2", "deadmine"]:
        assert secret not in text
    assert "mine-please summarise my mail" in text  # the client's own chat is theirs to take
    labels = {c["connection_id"]: c["account_label"] for c in archive["connections"]}
    assert labels[rows["google"]] == "mine-label"


def test_the_export_needs_a_session(intake_app):
    response = Visitor(intake_app).get("/account/export")
    assert response.status_code == 303 and response.headers["Location"] == "/login"


def test_the_account_page_links_to_the_export(two_accounts):
    visitor, _, _ = two_accounts["mine"]
    assert 'href="/account/export"' in visitor.get("/account").get_data(as_text=True)


def test_the_automations_page_shows_the_clients_notices_and_no_one_elses(two_accounts, owner_conn):
    visitor, mine, rows = two_accounts["mine"]
    _, theirs, _, _, _ = two_accounts["theirs"]
    owner_conn.execute("UPDATE connections SET status = 'needs_reauth' WHERE connection_id = %s", [rows["google"]])
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = 'Google Workspace needs to be "
                       "reconnected.' WHERE client_id = %s", [mine])
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = 'theirs paused' "
                       "WHERE client_id = %s", [theirs])

    page = visitor.get("/automations").get_data(as_text=True)

    assert "Notices" in page
    assert "Google Workspace stopped accepting Hapex's access" in page
    assert f'href="/connections/{rows["google"]}"' in page
    assert "was paused: Google Workspace needs to be reconnected." in page
    assert "You have used all of this month's budget" in page
    assert "theirs paused" not in page


def test_a_client_without_notices_sees_no_notice_section(intake_app, owner_conn):
    visitor, _, _ = signed_up_client(intake_app, owner_conn, "Quiet Florist")
    assert "Notices" not in visitor.get("/automations").get_data(as_text=True)


def test_the_connection_page_shows_when_and_by_which_runs_it_was_used(two_accounts, owner_conn):
    visitor, mine, rows = two_accounts["mine"]
    page = visitor.get(f"/connections/{rows['slack']}").get_data(as_text=True)
    assert "When Hapex used it" in page
    assert f'href="/runs/{rows["run"]}">Morning digest</a>, step 3' in page
    assert "A run used it" in page
    google = visitor.get(f"/connections/{rows['google']}").get_data(as_text=True)
    assert f'href="/runs/{rows["run"]}">Morning digest</a>, step 1' in google
    _, _, theirs_rows, _, _ = two_accounts["theirs"]
    assert theirs_rows["run"] not in page + google


def test_the_connection_page_lists_the_last_50_uses_newest_first(two_accounts, owner_conn):
    visitor, mine, rows = two_accounts["mine"]
    owner_conn.execute(
        "INSERT INTO credential_access (client_id, connection_id, purpose, reason, service, accessor, accessed_at) "
        "SELECT %s, %s, 'access_token', 'health_check', 'worker', 'host:1', now() + make_interval(mins => n) "
        "FROM generate_series(1, 60) AS n", [mine, rows["slack"]])
    page = visitor.get(f"/connections/{rows['slack']}").get_data(as_text=True)
    assert page.count("Checked that it still works") == 50
    assert "A run used it" not in page  # the oldest use, by the run, is past the last 50


def test_a_connection_never_used_says_so(two_accounts, owner_conn):
    visitor, mine, _ = two_accounts["mine"]
    unused = owner_conn.execute("INSERT INTO connections (client_id, provider, auth_kind) VALUES (%s, 'notion', "
                                "'oauth2') RETURNING connection_id", [mine]).fetchone()[0]
    assert "Not used yet." in visitor.get(f"/connections/{unused}").get_data(as_text=True)


def test_a_step_test_s_use_is_named_in_words_not_by_its_key(two_accounts, owner_conn):
    visitor, mine, rows = two_accounts["mine"]
    owner_conn.execute(
        "INSERT INTO credential_access (client_id, connection_id, purpose, reason, service, accessor) "
        "VALUES (%s, %s, 'access_token', 'token_refresh', 'agent', 'step_test'), "
        "(%s, %s, 'access_token', 'step_test', 'agent', 'step_test')", [mine, rows["google"]] * 2)
    page = visitor.get(f"/connections/{rows['google']}").get_data(as_text=True)
    assert "<td>You tested a step with it</td>" in page
    assert "<td>Renewed its access</td>" in page  # no run: not "for a run"
    assert "<td>step_test</td>" not in page


def test_an_export_larger_than_one_fetch_holds_every_row_once(two_accounts, owner_conn, monkeypatch):
    from intake.account_data import export

    visitor, mine, _ = two_accounts["mine"]
    automation_id = owner_conn.execute("SELECT automation_id FROM automations WHERE client_id = %s LIMIT 1",
                                       [mine]).fetchone()[0]
    owner_conn.execute("INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status) "
                       "SELECT %s, %s, 1, 'manual', 'succeeded' FROM generate_series(1, 7)", [mine, automation_id])
    monkeypatch.setattr(export, "ROWS_PER_FETCH", 2)  # the rows of a section arrive in several fetches

    archive = json.loads(visitor.get("/account/export").get_data(as_text=True))

    runs = [row["run_id"] for row in archive["runs"]]
    assert len(runs) == len(set(runs)) == 8
    assert set(runs) == table_ids(owner_conn, "runs", mine)


def test_a_download_read_slowly_holds_no_database_connection_or_open_transaction(two_accounts, owner_conn):
    """A client that stops reading its export (or never reads it) must not keep a pooled connection and an
    open snapshot: ten such downloads would otherwise take every connection of the intake's pool."""
    visitor, _, _, = two_accounts["mine"][:3]
    response = visitor.get("/account/export", buffered=False)
    try:
        assert response.status_code == 200
        first = next(iter(response.response))
        assert first
        held = owner_conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'hapex_intake' "
            "AND state LIKE 'idle in transaction%%' AND datname = current_database()").fetchone()
        assert held == (0,)
        archive = json.loads(first + b"".join(response.response)
                             if isinstance(first, bytes) else first + "".join(response.response))
        assert archive["format"] == "hapex-account-export/1" and archive["runs"]
    finally:
        response.close()


def test_the_export_names_the_item_each_poll_run_was_started_for(two_accounts, owner_conn):
    visitor, mine, mine_rows = two_accounts["mine"][:3]
    automation_id, version = owner_conn.execute(
        "SELECT automation_id, version FROM automations WHERE client_id = %s LIMIT 1", [mine]).fetchone()
    run_id = owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, trigger_item, status) "
        "VALUES (%s, %s, %s, 'poll', 'msg-18c2f0a1b2', 'succeeded') RETURNING run_id",
        [mine, automation_id, version]).fetchone()[0]
    archive = json.loads(visitor.get("/account/export").get_data(as_text=True))
    (run,) = [r for r in archive["runs"] if r["run_id"] == str(run_id)]
    assert run["trigger_kind"] == "poll" and run["trigger_item"] == "msg-18c2f0a1b2"
