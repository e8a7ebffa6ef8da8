"""Deleting an account: password first, the agent revokes, then every row of the client goes."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from shared.db import Database, tenant_transaction
from tests.agent_api import acting_for
from tests.factories import client_of, make_automation, make_client, make_connection, make_user
from tests.integration.conftest import AGENT_TOKEN, PASSWORD, Visitor

FILLED_TABLES = {"clients", "users", "sessions", "automations", "automation_versions", "connections",
                 "credentials", "runs", "run_steps", "cost_events", "monthly_costs", "chat_messages"}


def fill_every_table(intake_db: Database, agent_db: Database, client_id: uuid.UUID) -> None:
    """One row or more in every table that hangs off the client, written as the services do."""
    automation_id = make_automation(intake_db, client_id)
    connection_id = make_connection(agent_db, client_id, scopes=["scope.read"])
    with tenant_transaction(intake_db, client_id) as conn:
        conn.execute(
            "INSERT INTO automation_versions (client_id, automation_id, version, trigger, steps) "
            "VALUES (%s, %s, 1, '{}', '[]')", [client_id, automation_id])
        conn.execute(
            "INSERT INTO chat_messages (client_id, draft_id, role, content) VALUES (%s, %s, 'client', 'hi')",
            [client_id, uuid.uuid4()])
    with tenant_transaction(agent_db, client_id) as conn:
        conn.execute(
            "INSERT INTO credentials (client_id, connection_id, purpose, key_id, nonce, ciphertext) "
            "VALUES (%s, %s, 'refresh_token', 'k1:test', %s, %s)",
            [client_id, connection_id, b"\x00" * 12, b"sealed"])
        run_id = conn.execute(
            "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind) "
            "VALUES (%s, %s, 1, 'manual') RETURNING run_id", [client_id, automation_id]).fetchone()[0]
        conn.execute(
            "INSERT INTO run_steps (client_id, run_id, step_index, capability) VALUES (%s, %s, 0, 'test.step')",
            [client_id, run_id])
        conn.execute(
            "INSERT INTO cost_events (client_id, run_id, step_index, source, provider, amount_microusd) "
            "VALUES (%s, %s, 0, 'llm', 'anthropic', 1200)", [client_id, run_id])


def rows_per_table(owner_conn: psycopg.Connection, client_id: uuid.UUID) -> dict[str, int]:
    """Every table in the database with a client_id column, and how many rows carry this one."""
    tables = [r[0] for r in owner_conn.execute(
        """SELECT table_name FROM information_schema.columns
           WHERE column_name = 'client_id' AND table_schema = 'public'
             AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'public' AND table_type = 'BASE TABLE')""")]
    return {
        table: owner_conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE client_id = %s").format(sql.Identifier(table)),
            [client_id],
        ).fetchone()[0]
        for table in tables
    }


def test_deleting_an_account_leaves_no_row_with_its_client_id_in_any_table(
    signed_up, intake_db, agent_db, owner_conn, agent_transport
):
    visitor, email = signed_up
    client_id = client_of(owner_conn, email)
    fill_every_table(intake_db, agent_db, client_id)
    neighbour = make_client(intake_db, name="Neighbour")
    make_user(intake_db, neighbour)
    fill_every_table(intake_db, agent_db, neighbour)
    before = rows_per_table(owner_conn, client_id)
    assert {t for t, n in before.items() if n} >= FILLED_TABLES
    neighbour_before = rows_per_table(owner_conn, neighbour)
    agent_transport.calls.clear()  # signing in asked the agent to check the password
    user_id = owner_conn.execute("SELECT user_id FROM users WHERE email = %s", [email]).fetchone()[0]

    response = visitor.delete_account(PASSWORD)

    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert agent_transport.calls == [("POST", f"/v1/clients/{client_id}/users/{user_id}/password/check"),
                                     ("DELETE", f"/v1/clients/{client_id}/connections")]
    left = {t: n for t, n in rows_per_table(owner_conn, client_id).items() if n}
    assert left == {}
    assert rows_per_table(owner_conn, neighbour) == neighbour_before
    assert "deleted" in visitor.get("/").get_data(as_text=True)


def test_after_deletion_neither_the_cookie_nor_the_password_opens_anything(signed_up, intake_app):
    visitor, email = signed_up
    cookie = visitor.session_cookie()
    visitor.delete_account(PASSWORD)
    replay = Visitor(intake_app)
    replay.set_session_cookie(cookie)
    assert replay.get("/account").status_code == 303
    assert Visitor(intake_app).login(email, PASSWORD).status_code == 400


def test_a_wrong_password_deletes_nothing_and_asks_the_agent_only_to_check_it(signed_up, owner_conn,
                                                                               agent_transport):
    visitor, email = signed_up
    agent_transport.calls.clear()
    response = visitor.delete_account("not my password at all")
    assert response.status_code == 400
    assert "That password is not correct." in response.get_data(as_text=True)
    assert [path.rsplit("/", 2)[-2:] for _, path in agent_transport.calls] == [["password", "check"]]
    assert owner_conn.execute("SELECT count(*) FROM users WHERE email = %s", [email]).fetchone() == (1,)


@pytest.mark.parametrize("agent_status", [503, 401, 404])
def test_when_the_agent_cannot_revoke_nothing_is_deleted(signed_up, owner_conn, agent_transport, agent_status):
    visitor, email = signed_up
    agent_transport.fail_with = agent_status
    response = visitor.delete_account(PASSWORD)
    assert response.status_code == 503
    assert "nothing was deleted" in response.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM users WHERE email = %s", [email]).fetchone() == (1,)
    assert visitor.get("/account").status_code == 200


def test_the_agent_revokes_one_clients_connections_and_deletes_only_its_credentials(
    agent_service_app, intake_db, agent_db, owner_conn
):
    leaving, staying = make_client(intake_db), make_client(intake_db)
    for client in (leaving, staying):
        fill_every_table(intake_db, agent_db, client)
    make_connection(agent_db, leaving, status="revoked")
    api = agent_service_app.test_client()

    as_leaving = acting_for(intake_db, leaving, token=AGENT_TOKEN)
    response = api.delete(f"/v1/clients/{leaving}/connections", headers=as_leaving)

    assert response.status_code == 200
    assert response.json == {"connections_revoked": 1, "credentials_deleted": 1}
    statuses = dict(owner_conn.execute(
        "SELECT client_id, array_agg(DISTINCT status) FROM connections GROUP BY client_id").fetchall())
    assert statuses == {leaving: ["revoked"], staying: ["active"]}
    credentials = dict(owner_conn.execute(
        "SELECT client_id, count(*) FROM credentials GROUP BY client_id").fetchall())
    assert credentials == {staying: 1}
    again = api.delete(f"/v1/clients/{leaving}/connections", headers=as_leaving)
    assert again.json == {"connections_revoked": 0, "credentials_deleted": 0}


def test_the_agents_revoke_route_needs_the_bearer_token(agent_service_app, intake_db, agent_db, owner_conn):
    client = make_client(intake_db)
    make_connection(agent_db, client)
    api = agent_service_app.test_client()
    assert api.delete(f"/v1/clients/{client}/connections").status_code == 401
    assert api.delete(f"/v1/clients/{client}/connections",
                      headers={"Authorization": "Bearer " + "x" * 43}).status_code == 403
    without_proof = api.delete(f"/v1/clients/{client}/connections", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert without_proof.status_code == 401 and without_proof.json["error"] == "client_proof_required"
    assert owner_conn.execute("SELECT status FROM connections").fetchone() == ("active",)
