"""Account emails in a real browser without JavaScript, over TLS: the confirmation link from sign-up
and a forgotten password reset through its link, with mail caught by the local stack's catcher."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from agent_service.notifications.account_emails import deliver_account_emails
from agent_service.notifications.mailer import SMTPSettings
from hapex.localstack import mail_catcher
from shared.db import Database
from tests.e2e.conftest import sign_up_and_log_in

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a fresh and longer passphrase"
LINK = re.compile(r"https://\S+/email-link/[A-Za-z0-9_-]{43}")


@pytest.fixture
def mail(tmp_path, live_stack):
    """The catcher, and the worker's sending step run here against the live stack's database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "mail"
    controller = mail_catcher.start(folder, port)
    settings = SMTPSettings(host="127.0.0.1", port=port, sender=mail_catcher.LOCAL_SENDER, starttls=False)
    agent_db = Database(live_stack.database.agent_dsn, name="e2e-mail").open()

    def link_for(address: str, subject: str) -> str:
        deliver_account_emails(agent_db, settings)
        for path in reversed(mail_catcher.messages(folder)):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address and message["Subject"] == subject:
                match = LINK.search(message.get_content())  # type: ignore[attr-defined]
                assert match
                return match.group(0)
        raise AssertionError(f"no {subject!r} email")

    yield link_for
    agent_db.close()
    controller.stop()


def test_a_new_client_confirms_the_address_then_resets_a_forgotten_password(no_script_page, live_stack, mail):
    page = no_script_page
    address = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    sign_up_and_log_in(page, live_stack.database.owner_dsn, email=address, password=PASSWORD, confirm=False)
    assert urlsplit(page.url).path == "/automations"
    expect(page.locator("#unverified-email")).to_be_visible()

    link = mail(address, "Confirm your email address for Hapex")
    assert link.startswith(live_stack.intake_url + "/email-link/")
    page.goto(link)
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_text("Your email address is confirmed.")).to_be_visible()
    expect(page.locator("#unverified-email")).to_have_count(0)
    page.goto(link)
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_text("If an account uses this address")).to_be_visible()

    page.goto(mail(address, "Reset your Hapex password"))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    assert urlsplit(page.url).path == "/login"
    expect(page.get_by_text("Your password was changed")).to_be_visible()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert urlsplit(page.url).path == "/automations"
    logs = live_stack.logs()
    assert urlsplit(link).path.rsplit("/", 1)[1] not in logs and address not in logs
