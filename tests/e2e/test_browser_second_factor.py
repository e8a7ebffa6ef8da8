"""Two-step sign-in in Chromium without JavaScript, over TLS, against the real agent: set up an
authenticator app from the QR page, sign in with its code, then with a recovery code."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pyotp
from playwright.sync_api import expect

from agent_service.second_factor.views import STEP_SECONDS
from tests.e2e.conftest import sign_up_and_log_in

PASSWORD = "correct horse battery staple"


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_client_turns_on_two_step_sign_in_and_signs_in_with_a_code_then_a_recovery_code(
        no_script_page, live_stack, owner):
    page = no_script_page
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    sign_up_and_log_in(page, live_stack.database.owner_dsn, email=email, password=PASSWORD)
    page.goto("/account")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    totp = pyotp.TOTP(page.locator("#totp-key").inner_text())
    first = totp.now()
    page.get_by_label("The 6-digit code your app shows").fill(first)
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(codes) == 10

    page.get_by_role("button", name="Log out").click()
    log_in(page, email)
    assert urlsplit(page.url).path == "/login/code"
    # The first code is spent: the next time step's, which the agent takes too (clock drift), without waiting for it.
    page.get_by_label("Code").fill(totp.at(time.time() + STEP_SECONDS))
    page.get_by_role("button", name="Log in").click()
    assert urlsplit(page.url).path == "/automations"

    page.get_by_role("button", name="Log out").click()
    log_in(page, email)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Log in").click()
    assert urlsplit(page.url).path == "/automations"
    page.goto("/account")
    expect(page.get_by_text("You have 9 unused recovery codes.")).to_be_visible()
    logs = live_stack.logs()
    assert totp.secret not in logs and codes[0] not in logs
