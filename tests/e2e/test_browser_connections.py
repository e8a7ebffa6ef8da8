"""Connecting Google end to end in a real browser: our pages, the provider's consent page, back.

The provider is tests/provider_standin.py on loopback (consent page, token and revocation
endpoints); the intake and agent run under gunicorn over TLS. JavaScript is off.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from shared.automations.repository import create_automation, set_status
from shared.db import Database, tenant_transaction
from tests.e2e.conftest import sign_up_and_log_in
from tests.factories import client_of

PASSWORD = "correct horse battery staple"
METADATA = "https://www.googleapis.com/auth/gmail.metadata"
INBOX_SUMMARY = {
    "name": "Inbox summary",
    "trigger": {"kind": "manual"},
    "steps": [
        {"capability": "gmail.list_recent", "input": {}},
        {"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}}},
    ],
}


def sign_up(page, email: str, owner_dsn: str) -> None:
    sign_up_and_log_in(page, owner_dsn, email=email, password=PASSWORD)
    assert urlsplit(page.url).path == "/automations"


def save_enabled_automation(live_stack, client_id: uuid.UUID, definition: dict) -> uuid.UUID:
    """The automation as the intake saves one (validated, versioned, as the intake role), enabled."""
    intake = Database(live_stack.database.intake_dsn, name="e2e-automation").open()
    try:
        with tenant_transaction(intake, client_id) as conn:
            automation_id = create_automation(conn, client_id=client_id, definition=definition)
            set_status(conn, automation_id=automation_id, status="enabled")
            return automation_id
    finally:
        intake.close()


def test_a_client_connects_google_through_its_consent_page_and_disconnects_it(
        no_script_page, live_stack, provider_standin, owner):
    page = no_script_page
    standin = provider_standin
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    sign_up(page, email, live_stack.database.owner_dsn)
    client_id = client_of(owner, email)
    automation_id = save_enabled_automation(live_stack, client_id, INBOX_SUMMARY)
    tokens_before = standin.state.calls["POST /token"]
    revocations_before = standin.state.calls["POST /revoke"]

    page.goto("/connections")
    google = page.locator("section", has=page.locator("#provider-google"))
    expect(google.get_by_text("Used by: Inbox summary.")).to_be_visible()
    google.get_by_role("button", name="Connect Google Workspace").click()
    # Our page names what will be asked, then moves on to the provider by itself.
    page.wait_for_url(standin.url + "/authorize?**")
    asked = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert asked["scope"] == METADATA
    assert asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == live_stack.intake_url + "/connections/oauth/google/callback"
    assert asked["client_id"] == "standin-google-client"
    assert page.locator("#scopes").inner_text() == METADATA

    page.get_by_role("link", name="Allow").click()
    page.wait_for_url(live_stack.intake_url + "/connections/*")
    connection_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    expect(page.get_by_text("Google Workspace is connected.")).to_be_visible()
    assert page.locator(".facts .status").inner_text() == "active"
    expect(page.get_by_text(METADATA)).to_be_visible()
    assert standin.state.calls["POST /token"] == tokens_before + 1
    token_request = parse_qs(standin.state.bodies["POST /token"][-1].decode())
    assert token_request["code_verifier"][0] not in page.content()
    row = owner.execute("SELECT status, scopes_granted FROM connections WHERE connection_id = %s",
                        [connection_id]).fetchone()
    assert row == ("active", [METADATA])
    assert owner.execute("SELECT count(*) FROM credentials WHERE connection_id = %s",
                         [connection_id]).fetchone() == (2,)

    page.goto("/connections")
    assert page.locator("#provider-google ~ table .status").first.inner_text() == "active"
    page.goto(f"/connections/{connection_id}")
    page.get_by_label("Yes, disconnect it").check()
    page.get_by_role("button", name="Disconnect Google Workspace").click()
    assert urlsplit(page.url).path == f"/connections/{connection_id}"
    expect(page.get_by_text("confirmed that Hapex's access is revoked")).to_be_visible()
    assert page.locator(".facts .status").inner_text() == "revoked"
    assert standin.state.calls["POST /revoke"] == revocations_before + 1
    assert owner.execute("SELECT count(*) FROM credentials WHERE connection_id = %s",
                         [connection_id]).fetchone() == (0,)
    expect(page.get_by_text("Paused because they used Google Workspace: Inbox summary.")).to_be_visible()
    assert owner.execute("SELECT status FROM automations WHERE automation_id = %s",
                         [automation_id]).fetchone() == ("paused",)

    logs = live_stack.logs()
    for secret in (token_request["code"][0], token_request["code_verifier"][0], asked["state"],
                   "standin-refresh", f"standin-access-{tokens_before + 1}"):
        assert secret not in logs
