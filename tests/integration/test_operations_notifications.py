"""Notices to clients: one per event, emailed through a real SMTP server, holding nothing secret."""

from __future__ import annotations

import email
import email.policy
import secrets
import socket
import uuid
from datetime import timedelta

import pytest
import responses
from aiosmtpd.controller import Controller

from agent_service.config import smtp_settings
from agent_service.notifications.delivery import MAX_ATTEMPTS, deliver_notifications
from agent_service.notifications.mailer import SMTPSettings
from agent_service.runs.engine import execute_run
from agent_service.runs.prices import llm_cost_microusd
from agent_service.runs.triggers import start_run
from shared.config import Environment
from shared.db import tenant_transaction
from tests.factories import make_client, make_user
from tests.run_fixtures import DIGEST, TOKEN_URL, automation, stand_in_providers, tenant


class Inbox:
    """What a local SMTP server (aiosmtpd) received: one entry per delivered message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.content.decode("utf-8", "replace")
        parsed = email.message_from_string(raw, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed, raw))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, SMTPSettings(host="127.0.0.1", port=controller.port, sender="Hapex <notices@hapex.test>",
                                  starttls=False)
    finally:
        controller.stop()


def notices(owner_conn, client_id):
    return owner_conn.execute(
        "SELECT kind, provider, budget_percent, email_status FROM notifications WHERE client_id = %s ORDER BY kind",
        [client_id]).fetchall()


def run_now(rt, client_id, automation_id):
    with tenant_transaction(rt.db, client_id) as conn:
        started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
    return execute_run(rt, client_id=client_id, run_id=started.run_id)


def add_cost(owner_conn, client_id, amount):
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd) "
                       "VALUES (%s, 'llm', 'anthropic', %s)", [client_id, amount])


@responses.activate
def test_a_broken_connection_makes_one_reconnect_notice_and_one_per_paused_automation(rt, intake_db, agent_db,
                                                                                     owner_conn):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=10))
    first = automation(intake_db, t.client_id)
    second = automation(intake_db, t.client_id)
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    assert run_now(rt, t.client_id, first) == "failed"

    assert notices(owner_conn, t.client_id) == [
        ("automation_paused", None, None, "pending"),
        ("automation_paused", None, None, "pending"),
        ("connection_needs_reauth", "google", None, "pending"),
    ]
    assert {row[0] for row in owner_conn.execute(
        "SELECT automation_id FROM notifications WHERE kind = 'automation_paused'")} == {first, second}
    # The same state seen again is not a new event.
    owner_conn.execute("UPDATE connections SET status_reason = 'still broken' WHERE connection_id = %s", [t.google])
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = 'again'")
    assert len(notices(owner_conn, t.client_id)) == 3


def test_a_budget_reaching_80_percent_makes_one_notice_per_month_and_budget(intake_db, owner_conn):
    client_id = make_client(intake_db)
    other = make_client(intake_db)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1000000")
    add_cost(owner_conn, client_id, 790000)
    assert notices(owner_conn, client_id) == []
    add_cost(owner_conn, client_id, 20000)
    assert notices(owner_conn, client_id) == [("budget_nearly_used", None, 81, "pending")]
    add_cost(owner_conn, client_id, 150000)
    assert len(notices(owner_conn, client_id)) == 1
    assert notices(owner_conn, other) == []
    # A raised budget reached again warns again.
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1200000 WHERE client_id = %s", [client_id])
    add_cost(owner_conn, client_id, 10)
    assert [row[2] for row in notices(owner_conn, client_id)] == [81, 80]


def test_a_client_without_a_budget_gets_no_budget_notice(intake_db, owner_conn):
    client_id = make_client(intake_db)
    add_cost(owner_conn, client_id, 10**9)
    assert notices(owner_conn, client_id) == []


@responses.activate
def test_email_notices_reach_a_real_smtp_server_and_hold_no_secret_or_content(rt, intake_db, agent_db, owner_conn,
                                                                              smtp_server):
    inbox, settings = smtp_server
    canaries = {name: f"{name}-canary-{secrets.token_hex(6)}" for name in
                ("email_body", "llm_reply", "automation", "client", "account", "label")}
    t = tenant(rt, intake_db, agent_db)
    owner_conn.execute("UPDATE clients SET name = %s", [canaries["client"]])
    owner_conn.execute("UPDATE connections SET account_label = %s", [canaries["account"]])
    alice = make_user(intake_db, t.client_id, email=f"alice-{uuid.uuid4().hex[:6]}@example.com")
    assert alice
    bob_email = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    make_user(intake_db, t.client_id, email=bob_email)
    bystander = make_client(intake_db)
    make_user(intake_db, bystander, email="bystander@example.com")
    automation_id = automation(intake_db, t.client_id, {**DIGEST, "name": canaries["automation"]})
    cost = llm_cost_microusd("claude-sonnet-5-5", 1234, 56)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = %s", [cost * 100 // 85])

    stand_in_providers(responses.mock, email_body=canaries["email_body"], llm_reply=canaries["llm_reply"])
    assert run_now(rt, t.client_id, automation_id) == "succeeded"
    owner_conn.execute("UPDATE connections SET access_token_expires_at = now() - interval '1 minute' "
                       "WHERE connection_id = %s", [t.google])
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    assert run_now(rt, t.client_id, automation_id) == "failed"

    assert deliver_notifications(agent_db, settings) == {"sent": 3}

    assert len(inbox.messages) == 6  # three notices, each to both users, one message per user
    recipients = sorted(rcpt for rcpts, _, _ in inbox.messages for rcpt in rcpts)
    alice_email = owner_conn.execute("SELECT email FROM users WHERE user_id = %s", [alice]).fetchone()[0]
    assert recipients == sorted([alice_email] * 3 + [bob_email] * 3)
    subjects = sorted({message["Subject"] for _, message, _ in inbox.messages})
    assert subjects == sorted([
        "Action needed: reconnect Google Workspace to Hapex",
        "An automation was paused in Hapex",
        "You have used 85% of this month's Hapex budget",
    ])
    secrets_and_content = [*canaries.values(), *t.tokens.values(), "bystander@example.com",
                           str(t.client_id), str(automation_id), str(t.google)]
    for rcpts, message, raw in inbox.messages:
        assert len(rcpts) == 1 and message["To"] == rcpts[0]
        other_user = bob_email if rcpts[0] == alice_email else alice_email
        for value in [*secrets_and_content, other_user]:
            assert value not in raw, value
        assert message["From"] == "Hapex <notices@hapex.test>"
        assert "sign in to Hapex" in message.get_content()
    assert {row[3] for row in notices(owner_conn, t.client_id)} == {"sent"}


def test_each_notice_is_emailed_once(intake_db, agent_db, owner_conn, smtp_server):
    inbox, settings = smtp_server
    client_id = make_client(intake_db)
    make_user(intake_db, client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 90)
    assert deliver_notifications(agent_db, settings) == {"sent": 1}
    assert deliver_notifications(agent_db, settings) == {}
    assert len(inbox.messages) == 1
    assert owner_conn.execute("SELECT email_attempts, emailed_at IS NOT NULL FROM notifications").fetchone() == (
        1, True)


def test_without_smtp_settings_notices_stay_in_the_app(intake_db, agent_db, owner_conn):
    client_id = make_client(intake_db)
    make_user(intake_db, client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 90)
    assert smtp_settings(Environment({})) is None
    assert deliver_notifications(agent_db, None) == {"in_app_only": 1}
    assert notices(owner_conn, client_id) == [("budget_nearly_used", None, 90, "in_app_only")]


def test_a_client_without_users_has_no_one_to_email(intake_db, agent_db, owner_conn, smtp_server):
    inbox, settings = smtp_server
    client_id = make_client(intake_db)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 90)
    assert deliver_notifications(agent_db, settings) == {"no_recipient": 1}
    assert inbox.messages == []


def test_an_unreachable_smtp_server_is_retried_then_given_up(intake_db, agent_db, owner_conn):
    client_id = make_client(intake_db)
    make_user(intake_db, client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 90)
    nowhere = SMTPSettings(host="127.0.0.1", port=free_port(), sender="notices@hapex.test", starttls=False)
    for _ in range(MAX_ATTEMPTS - 1):
        assert deliver_notifications(agent_db, nowhere) == {"pending": 1}
    assert deliver_notifications(agent_db, nowhere) == {"failed": 1}
    assert deliver_notifications(agent_db, nowhere) == {}
    assert owner_conn.execute("SELECT email_status, email_attempts FROM notifications").fetchone() == (
        "failed", MAX_ATTEMPTS)


def test_starttls_is_required_by_default_so_a_plain_server_is_not_used(intake_db, agent_db, owner_conn, smtp_server):
    inbox, settings = smtp_server
    client_id = make_client(intake_db)
    make_user(intake_db, client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 90)
    strict = SMTPSettings(host=settings.host, port=settings.port, sender=settings.sender)
    assert deliver_notifications(agent_db, strict) == {"pending": 1}
    assert inbox.messages == []


def test_the_agent_cannot_write_or_delete_notices_itself(intake_db, agent_db):
    client_id = make_client(intake_db)
    with pytest.raises(Exception, match="permission|may not"), tenant_transaction(agent_db, client_id) as conn:
        conn.execute("INSERT INTO notifications (client_id, kind, event_key) VALUES (%s, 'automation_paused', 'x')",
                     [client_id])
    with pytest.raises(Exception, match="permission|may not"), tenant_transaction(agent_db, client_id) as conn:
        conn.execute("DELETE FROM notifications")


def test_a_budget_used_up_at_once_says_all_of_it_not_a_percentage(intake_db, agent_db, owner_conn, smtp_server):
    inbox, settings = smtp_server
    client_id = make_client(intake_db)
    make_user(intake_db, client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 100")
    add_cost(owner_conn, client_id, 250)
    assert notices(owner_conn, client_id) == [("budget_nearly_used", None, 250, "pending")]
    assert deliver_notifications(agent_db, settings) == {"sent": 1}
    assert inbox.messages[0][1]["Subject"] == "You have used all of this month's Hapex budget"
