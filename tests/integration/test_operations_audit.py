"""The credential access audit: each handing-out of plaintext leaves a row of metadata, which the
agent can add to but not read, change or delete."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import responses

from agent_service.connections.lifecycle import disconnect
from agent_service.connections.provider_oauth import OAuthClient
from agent_service.runs.engine import execute_run
from agent_service.runs.triggers import start_run
from agent_service.vault import Accessor, CredentialUnreadable, Purpose
from shared.catalog import get_provider
from shared.db import PermissionDenied, tenant_transaction
from shared.secret import Secret
from tests.run_fixtures import TOKEN_URL, automation, stand_in_providers, tenant

REVOKE_URL = "https://oauth2.googleapis.com/revoke"
HOST = socket.gethostname()


def audit_rows(owner_conn, client_id):
    return owner_conn.execute(
        "SELECT connection_id, purpose, reason, service, run_id, step_index FROM credential_access "
        "WHERE client_id = %s ORDER BY accessed_at, purpose", [client_id]).fetchall()


def run_now(rt, client_id, automation_id):
    with tenant_transaction(rt.db, client_id) as conn:
        started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
    return started.run_id, execute_run(rt, client_id=client_id, run_id=started.run_id)


@responses.activate
def test_every_decryption_in_a_run_is_recorded_with_its_run_and_step(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=30))
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.post(TOKEN_URL, json={"access_token": "ya29.fresh", "expires_in": 3600, "token_type": "Bearer"})

    run_id, status = run_now(rt, t.client_id, automation_id)

    assert status == "succeeded"
    assert audit_rows(owner_conn, t.client_id) == [
        (t.google, "refresh_token", "token_refresh", "worker", run_id, 0),
        (t.google, "access_token", "run_step", "worker", run_id, 0),
        (t.slack, "access_token", "run_step", "worker", run_id, 2),
    ]
    accessors = {row[0] for row in owner_conn.execute("SELECT accessor FROM credential_access")}
    assert len(accessors) == 1 and accessors.pop().startswith(f"{HOST[:150]}:")


@responses.activate
def test_a_refresh_that_fails_midway_is_still_recorded(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=30))
    automation_id = automation(intake_db, t.client_id)
    responses.post(TOKEN_URL, status=503)

    run_id, status = run_now(rt, t.client_id, automation_id)

    assert status == "failed"
    # The refresh token was sent to the provider even though the refresh rolled back.
    assert audit_rows(owner_conn, t.client_id) == [(t.google, "refresh_token", "token_refresh", "worker", run_id, 0)]


@responses.activate
def test_disconnecting_records_the_revocation(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    responses.post(REVOKE_URL, status=200)
    disconnect(agent_db, rt.vault, client_id=t.client_id, connection_id=t.google, provider=get_provider("google"),
               oauth_client=OAuthClient("g", Secret("gs")), verify="/dev/null")
    assert audit_rows(owner_conn, t.client_id) == [(t.google, "refresh_token", "revocation", "agent", None, None)]


def test_a_read_naming_no_accessor_is_recorded_as_the_api_for_an_unspecified_reason(rt, intake_db, agent_db,
                                                                                    owner_conn):
    t = tenant(rt, intake_db, agent_db)
    with rt.vault.open_for_step(client_id=t.client_id, connection_id=t.slack, purpose=Purpose.ACCESS_TOKEN):
        pass
    with rt.vault.open_for_step(client_id=t.client_id, connection_id=t.slack, purpose=Purpose.ACCESS_TOKEN,
                                accessor=Accessor("worker", reason="health_check")):
        pass
    assert audit_rows(owner_conn, t.client_id) == [
        (t.slack, "access_token", "other", "agent", None, None),
        (t.slack, "access_token", "health_check", "worker", None, None),
    ]


def test_a_credential_that_fails_to_decrypt_hands_out_nothing_and_records_nothing(rt, intake_db, agent_db,
                                                                                 owner_conn):
    t = tenant(rt, intake_db, agent_db)
    owner_conn.execute("UPDATE credentials SET ciphertext = ciphertext || '\\x00'::bytea WHERE connection_id = %s",
                       [t.slack])
    with pytest.raises(CredentialUnreadable), rt.vault.open_for_step(
            client_id=t.client_id, connection_id=t.slack, purpose=Purpose.ACCESS_TOKEN):
        pass
    assert audit_rows(owner_conn, t.client_id) == []
    assert owner_conn.execute("SELECT status FROM connections WHERE connection_id = %s", [t.slack]).fetchone() == (
        "needs_reauth",)


def test_the_agent_can_add_to_the_audit_but_not_read_change_or_delete_it(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    with rt.vault.open_for_step(client_id=t.client_id, connection_id=t.slack, purpose=Purpose.ACCESS_TOKEN):
        pass
    for statement in ("SELECT * FROM credential_access", "UPDATE credential_access SET reason = 'other'",
                      "DELETE FROM credential_access"):
        with pytest.raises(PermissionDenied), tenant_transaction(agent_db, t.client_id) as conn:
            conn.execute(statement)
    assert len(audit_rows(owner_conn, t.client_id)) == 1


def test_an_audit_row_cannot_be_written_for_another_client(rt, intake_db, agent_db):
    t = tenant(rt, intake_db, agent_db)
    other = tenant(rt, intake_db, agent_db)
    with pytest.raises(Exception, match="client"), tenant_transaction(agent_db, t.client_id) as conn:
        conn.execute("INSERT INTO credential_access (client_id, connection_id, purpose, reason, service, accessor) "
                     "VALUES (%s, %s, 'access_token', 'other', 'agent', 'x')", [other.client_id, other.slack])
