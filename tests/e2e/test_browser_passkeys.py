"""Passkeys in Chromium over TLS against the real agent, with the DevTools virtual authenticator (CDP):
register one on the account page, sign out, sign in with it instead of the password, then as the
second step after the password. The page's one script runs under its nonce; no CSP violation."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.e2e.conftest import sign_up_and_log_in

PASSWORD = "correct horse battery staple"


def test_a_passkey_is_registered_then_signs_in_instead_of_the_password_and_as_the_second_step(
        browser, live_stack, owner):
    context = browser.new_context(base_url=live_stack.intake_url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]
    try:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        sign_up_and_log_in(page, live_stack.database.owner_dsn, email=email, password=PASSWORD)
        page.goto("/account")
        page.get_by_label("Name for the new passkey").fill("Test laptop")
        page.get_by_label("Your password, to add a passkey").fill(PASSWORD)
        page.get_by_role("button", name="Add a passkey").click()
        page.get_by_role("button", name="Create the passkey “Test laptop”").click()
        expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
        assert len(page.locator("ul.recovery-codes code").all_inner_texts()) == 10
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert len(stored) == 1 and stored[0]["isResidentCredential"] is True
        stored_rows = owner.execute("SELECT label, transports FROM user_passkeys").fetchall()
        assert stored_rows == [("Test laptop", ["internal"])]

        # Signed out, then back in with the passkey alone: no email, no password.
        page.get_by_role("button", name="Log out").click()
        page.goto("/login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.get_by_role("button", name="Use my passkey").click()
        page.wait_for_url("**/automations")
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

        # Signed out again: the password, then the passkey as the second step.
        page.get_by_role("button", name="Log out").click()
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/login/code")
        page.get_by_role("button", name="Use a passkey instead").click()
        page.get_by_role("button", name="Use my passkey").click()
        page.wait_for_url("**/automations")
        page.goto("/account")
        expect(page.get_by_role("cell", name="Test laptop")).to_be_visible()
        last_used = owner.execute("SELECT last_used_at IS NOT NULL FROM user_passkeys").fetchone()
        assert last_used == (True,)
        assert not [p for p in problems if "Content Security Policy" in p], problems
    finally:
        context.close()
