"""Connecting and disconnecting providers in the agent, against stand-ins for their endpoints."""

from __future__ import annotations

import os
import secrets

import pytest
import responses

from agent_service.connections.lifecycle import (
    REVOCATION_PENDING,
    ConnectionMissing,
    connect_api_key,
    connect_oauth,
    disconnect,
    finish_pending_revocation,
)
from agent_service.connections.provider_oauth import InvalidGrant, OAuthClient, RevocationOutcome
from agent_service.vault import Keyring, Purpose, Vault
from shared.catalog import get_provider
from shared.db import tenant_transaction
from shared.secret import Secret
from tests.factories import make_client

G = "https://www.googleapis.com/auth/"
CLIENT = OAuthClient("client-123", Secret("client-secret"))
VERIFY = "/dev/null"
TOKEN_URL = "https://oauth2.googleapis.com/token"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"


@pytest.fixture
def vault(agent_db):
    return Vault(Keyring(os.urandom(32)), agent_db)


@pytest.fixture
def client_id(intake_db):
    return make_client(intake_db)


def canary(kind: str) -> str:
    return f"{kind}-canary-{secrets.token_hex(8)}"


def google_connect(agent_db, vault, client_id, *, scope=G + "gmail.readonly", requested=(G + "gmail.readonly",),
                   connection_id=None, access=None, refresh=None):
    body = {"access_token": access or canary("ya29"), "expires_in": 3600, "token_type": "Bearer", "scope": scope}
    if refresh is not False:
        body["refresh_token"] = refresh or canary("1//refresh")
    responses.post(TOKEN_URL, json=body)
    return connect_oauth(
        agent_db, vault, client_id=client_id, provider=get_provider("google"), oauth_client=CLIENT,
        code=Secret("4/code"), code_verifier=Secret("v" * 43), redirect_uri="https://hapex.test/cb",
        requested_scopes=requested, connection_id=connection_id, verify=VERIFY,
    )


@responses.activate
def test_a_connected_provider_stores_ciphertext_granted_scopes_and_expiry_but_no_plaintext(
        agent_db, vault, client_id, owner_conn):
    access, refresh = canary("ya29"), canary("1//refresh")
    connected = google_connect(agent_db, vault, client_id, access=access, refresh=refresh)
    row = connected.connection
    assert row["status"] == "active" and row["scopes_granted"] == [G + "gmail.readonly"]
    assert row["access_token_expires_at"] is not None
    assert connected.missing_scopes == ()
    stored = owner_conn.execute("SELECT purpose, ciphertext FROM credentials ORDER BY purpose").fetchall()
    assert [p for p, _ in stored] == ["access_token", "refresh_token"]
    everything = str(owner_conn.execute("SELECT * FROM credentials").fetchall())
    everything += str(owner_conn.execute("SELECT * FROM connections").fetchall())
    assert access not in everything and refresh not in everything
    assert access.encode() not in b"".join(bytes(c) for _, c in stored)
    with vault.open_for_step(client_id=client_id, connection_id=row["connection_id"],
                             purpose=Purpose.REFRESH_TOKEN) as secret:
        assert secret.reveal() == refresh


@responses.activate
def test_less_granted_than_asked_is_recorded_exactly_and_the_rest_reported_missing(agent_db, vault, client_id):
    requested = (G + "gmail.readonly", G + "spreadsheets")
    connected = google_connect(agent_db, vault, client_id, scope=G + "gmail.readonly", requested=requested)
    assert connected.connection["scopes_granted"] == [G + "gmail.readonly"]
    assert connected.missing_scopes == (G + "spreadsheets",)


@responses.activate
def test_an_invalid_code_stores_nothing(agent_db, vault, client_id, owner_conn):
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(InvalidGrant):
        connect_oauth(agent_db, vault, client_id=client_id, provider=get_provider("google"), oauth_client=CLIENT,
                      code=Secret("bad"), code_verifier=Secret("v" * 43), redirect_uri="https://hapex.test/cb",
                      requested_scopes=(G + "gmail.readonly",), connection_id=None, verify=VERIFY)
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)


@responses.activate
def test_reconnecting_keeps_the_same_connection_and_replaces_its_tokens(agent_db, vault, client_id, owner_conn):
    first = google_connect(agent_db, vault, client_id).connection
    connection_id = first["connection_id"]
    owner_conn.execute("UPDATE connections SET status = 'needs_reauth'")
    new_refresh = canary("1//new")
    again = google_connect(agent_db, vault, client_id, connection_id=connection_id, refresh=new_refresh).connection
    assert again["connection_id"] == connection_id and again["status"] == "active"
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (1,)
    with vault.open_for_step(client_id=client_id, connection_id=connection_id,
                             purpose=Purpose.REFRESH_TOKEN) as secret:
        assert secret.reveal() == new_refresh


@responses.activate
def test_reconnecting_another_clients_connection_is_refused_before_any_token_request(
        agent_db, vault, client_id, intake_db):
    theirs = google_connect(agent_db, vault, client_id).connection["connection_id"]
    me = make_client(intake_db)
    calls_before = len(responses.calls)
    with pytest.raises(ConnectionMissing):
        google_connect(agent_db, vault, me, connection_id=theirs)
    assert len([c for c in responses.calls[calls_before:] if c.request.url == TOKEN_URL]) == 0


@responses.activate
def test_disconnect_revokes_at_the_provider_deletes_the_ciphertext_and_pauses_dependents(
        agent_db, vault, client_id, intake_db, owner_conn):
    refresh = canary("1//refresh")
    connection_id = google_connect(agent_db, vault, client_id, refresh=refresh).connection["connection_id"]
    with tenant_transaction(intake_db, client_id) as conn:
        conn.execute(
            """INSERT INTO automations (client_id, name, status, steps) VALUES
               (%s, 'digest', 'enabled', '[{"capability": "gmail.search"}, {"capability": "llm.summarise"}]'),
               (%s, 'slack only', 'enabled', '[{"capability": "slack.post_message"}]')""",
            [client_id, client_id],
        )
    responses.post(REVOKE_URL, status=200)
    outcome = disconnect(agent_db, vault, client_id=client_id, connection_id=connection_id,
                         provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY)
    assert outcome is RevocationOutcome.REVOKED
    revoke_call = [c for c in responses.calls if c.request.url == REVOKE_URL][0]
    assert f"token={refresh.replace('/', '%2F')}" in revoke_call.request.body
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    assert owner_conn.execute("SELECT status FROM connections").fetchone() == ("revoked",)
    states = dict(owner_conn.execute("SELECT name, status FROM automations").fetchall())
    assert states == {"digest": "paused", "slack only": "enabled"}
    reason = owner_conn.execute("SELECT paused_reason FROM automations WHERE name = 'digest'").fetchone()[0]
    assert "Google Workspace was disconnected" in reason


@responses.activate
def test_a_provider_that_is_down_keeps_the_ciphertext_for_a_later_retry(agent_db, vault, client_id, owner_conn):
    connection_id = google_connect(agent_db, vault, client_id).connection["connection_id"]
    responses.post(REVOKE_URL, status=503)
    outcome = disconnect(agent_db, vault, client_id=client_id, connection_id=connection_id,
                         provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY)
    assert outcome is RevocationOutcome.RETRY_LATER
    assert owner_conn.execute("SELECT status, status_reason FROM connections").fetchone() == (
        "revoked", REVOCATION_PENDING)
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (2,)
    responses.replace(responses.POST, REVOKE_URL, status=200)
    again = finish_pending_revocation(agent_db, vault, client_id=client_id, connection_id=connection_id,
                                      provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY,
                                      give_up=False)
    assert again is RevocationOutcome.REVOKED
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    assert owner_conn.execute("SELECT status_reason FROM connections").fetchone() == (None,)


@responses.activate
def test_a_token_already_invalid_counts_as_revoked(agent_db, vault, client_id, owner_conn):
    connection_id = google_connect(agent_db, vault, client_id).connection["connection_id"]
    responses.post(REVOKE_URL, status=400, json={"error": "invalid_token"})
    outcome = disconnect(agent_db, vault, client_id=client_id, connection_id=connection_id,
                         provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY)
    assert outcome is RevocationOutcome.ALREADY_INVALID
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)


def test_an_api_key_is_stored_encrypted_and_only_its_last_four_shown(agent_db, vault, client_id, owner_conn):
    key = "whsec_" + secrets.token_hex(16)
    row = connect_api_key(agent_db, vault, client_id=client_id, provider=get_provider("webhook"),
                          api_key=Secret(key), label="Orders hook")
    assert row["secret_hint"] == key[-4:]
    assert row["auth_kind"] == "api_key"
    dump = str(owner_conn.execute("SELECT * FROM credentials").fetchall()) + str(row)
    assert key not in dump and key[:-4] not in dump


def test_disconnecting_another_clients_connection_is_refused(agent_db, vault, client_id, intake_db, owner_conn):
    row = connect_api_key(agent_db, vault, client_id=client_id, provider=get_provider("webhook"),
                          api_key=Secret("whsec_" + "a1b2" * 8), label=None)
    intruder = make_client(intake_db)
    with pytest.raises(ConnectionMissing):
        disconnect(agent_db, vault, client_id=intruder, connection_id=row["connection_id"],
                   provider=get_provider("webhook"), oauth_client=None, verify=VERIFY)
    assert owner_conn.execute("SELECT status FROM connections").fetchone() == ("active",)


@responses.activate
def test_a_revocation_refused_as_invalid_client_keeps_the_ciphertext_and_is_retried_not_counted_as_revoked(
        agent_db, vault, client_id, owner_conn):
    refresh = canary("1//refresh")
    connection_id = google_connect(agent_db, vault, client_id, refresh=refresh).connection["connection_id"]
    responses.post(REVOKE_URL, status=401, json={"error": "invalid_client"})
    outcome = disconnect(agent_db, vault, client_id=client_id, connection_id=connection_id,
                         provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY)
    assert outcome is RevocationOutcome.RETRY_LATER
    sent = [c for c in responses.calls if c.request.url == REVOKE_URL][0].request.body
    assert "client_secret=client-secret" in sent and "client_id=client-123" in sent
    assert owner_conn.execute("SELECT status, status_reason FROM connections").fetchone() == (
        "revoked", REVOCATION_PENDING)
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (2,)
    assert owner_conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:finish_revocation' AND status = 'todo'"
    ).fetchone() == (1,)


@responses.activate
def test_retries_that_never_get_a_confirmation_leave_the_connection_marked_unconfirmed(
        agent_db, vault, client_id, owner_conn):
    connection_id = google_connect(agent_db, vault, client_id).connection["connection_id"]
    responses.post(REVOKE_URL, status=401, json={"error": "invalid_client"})
    disconnect(agent_db, vault, client_id=client_id, connection_id=connection_id,
               provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY)
    last = finish_pending_revocation(agent_db, vault, client_id=client_id, connection_id=connection_id,
                                     provider=get_provider("google"), oauth_client=CLIENT, verify=VERIFY,
                                     give_up=True)
    assert last is RevocationOutcome.RETRY_LATER
    assert owner_conn.execute("SELECT status, status_reason FROM connections").fetchone() == (
        "revoked", "revocation_unconfirmed")


@responses.activate
def test_a_renewed_grant_without_a_refresh_token_leaves_no_old_refresh_token_stored(
        agent_db, vault, client_id, owner_conn):
    connection_id = google_connect(agent_db, vault, client_id).connection["connection_id"]
    owner_conn.execute("UPDATE connections SET status = 'needs_reauth'")
    google_connect(agent_db, vault, client_id, connection_id=connection_id, refresh=False)
    purposes = owner_conn.execute("SELECT purpose FROM credentials ORDER BY purpose").fetchall()
    assert purposes == [("access_token",)]
