"""Cross-site request forgery: every state change needs this site's own token."""

from __future__ import annotations

import pytest

from tests.integration.conftest import BASE_URL, PASSWORD, Visitor, new_email


def post_routes(app) -> list[str]:
    return sorted(
        rule.rule for rule in app.url_map.iter_rules()
        if rule.methods & {"POST", "PUT", "PATCH", "DELETE"}
    )


def test_the_state_changing_routes_are_the_ones_this_file_covers(intake_app):
    assert post_routes(intake_app) == [
        "/account/delete",
        # Forgery of an address change: test_accounts_email_links.py (it needs the password, and the new link).
        "/account/email",
        # Forgeries of the team routes: tests/integration/test_accounts_members.py.
        "/account/members/<uuid:user_id>/remove", "/account/members/<uuid:user_id>/role", "/account/members/invite",
        "/account/members/require-second-factor",
        # Forgeries of the passkey routes: tests/integration/test_accounts_passkeys.py.
        "/account/passkeys", "/account/passkeys/<uuid:passkey_id>/remove", "/account/passkeys/new",
        "/account/password",
        # Forgeries of the second-factor routes: tests/integration/test_accounts_second_factor.py.
        "/account/second-factor/confirm", "/account/second-factor/enrol", "/account/second-factor/off",
        # Sign out everywhere: a forgery would only end sessions, and still cannot (test_accounts_members.py).
        "/account/sessions/end-all",
        # Forgeries of the account email routes: tests/integration/test_accounts_email_links.py.
        "/account/verify/resend",
        # Forgeries of the automation routes: tests/integration/test_automations_pages.py.
        "/automations/<uuid:automation_id>/archive", "/automations/<uuid:automation_id>/delete",
        "/automations/<uuid:automation_id>/disable", "/automations/<uuid:automation_id>/duplicate",
        "/automations/<uuid:automation_id>/edit",
        "/automations/<uuid:automation_id>/enable", "/automations/<uuid:automation_id>/restore",
        "/automations/<uuid:automation_id>/run",
        "/automations/<uuid:automation_id>/webhook", "/automations/new",
        # Forgeries of the build chat's routes: tests/integration/test_chat.py.
        "/chat/<uuid:draft_id>/approve", "/chat/<uuid:draft_id>/ask-again", "/chat/<uuid:draft_id>/messages",
        "/chat/new",
        # Forgeries of the connection routes: tests/integration/test_connections_pages.py.
        "/connections/<provider_key>/connect", "/connections/<uuid:connection_id>/disconnect",
        "/connections/<uuid:connection_id>/reduce-access", "/connections/api-key",
        # A forged budget change: tests/integration/test_automation_housekeeping.py.
        "/costs/budget",
        "/email-link/<token>",
        # Called by other systems with a secret URL; no session, so no CSRF token (see the same file).
        "/hooks/<path:secret>",
        "/login", "/login/code", "/login/code/passkey", "/login/code/passkey/finish", "/login/passkey",
        "/login/passkey/finish", "/logout", "/password/forgot",
        # A forged retry: tests/integration/test_retry_runs.py.
        "/runs/<uuid:run_id>/retry",
        "/signup",
    ]


def forged(visitor: Visitor, path: str, data: dict[str, str], token: str | None = None):
    form = dict(data)
    if token is not None:
        form["csrf_token"] = token
    return visitor.client.post(path, data=form, base_url=BASE_URL, headers={"Referer": BASE_URL + "/"})


@pytest.mark.parametrize("token", [None, "", "forged-token", "IjAwMDAi.abcdef.0000000000000000000000000"])
def test_a_sign_up_without_a_valid_token_creates_nothing(intake_app, owner_conn, token):
    visitor = Visitor(intake_app)
    visitor.get("/signup")
    response = forged(visitor, "/signup",
                      {"business_name": "Forged", "email": new_email(), "password": PASSWORD}, token)
    assert response.status_code == 400
    assert "This form has expired or did not come from this site" in response.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (0,)


def test_a_login_without_a_token_signs_no_one_in(intake_app, signed_up):
    _, email = signed_up
    visitor = Visitor(intake_app)
    response = forged(visitor, "/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert visitor.session_cookie() is None


def test_a_forged_logout_leaves_the_session_alive(signed_up):
    visitor, _ = signed_up
    assert forged(visitor, "/logout", {}).status_code == 400
    assert visitor.get("/account").status_code == 200


def test_a_forged_password_change_changes_nothing(signed_up, intake_app):
    visitor, email = signed_up
    response = forged(visitor, "/account/password",
                      {"current_password": PASSWORD, "new_password": "attacker passphrase",
                       "confirm_password": "attacker passphrase"})
    assert response.status_code == 400
    assert Visitor(intake_app).login(email, PASSWORD).status_code == 303


def test_a_forged_account_deletion_deletes_nothing(signed_up, owner_conn, agent_transport):
    visitor, _ = signed_up
    agent_transport.calls.clear()  # signing in asked the agent to check the password
    assert forged(visitor, "/account/delete", {"password": PASSWORD}).status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (1,)
    assert agent_transport.calls == []


def test_a_token_from_another_browser_does_not_pass(signed_up, intake_app):
    victim, _ = signed_up
    attacker = Visitor(intake_app)
    attacker_token = attacker.csrf_token("/login")
    assert forged(victim, "/logout", {}, token=attacker_token).status_code == 400
    assert victim.get("/account").status_code == 200


def test_a_post_from_another_origin_is_refused_even_with_a_token(signed_up):
    visitor, _ = signed_up
    token = visitor.csrf_token("/account")
    response = visitor.client.post(
        "/logout", data={"csrf_token": token}, base_url=BASE_URL,
        headers={"Referer": "https://evil.example/page"},
    )
    assert response.status_code == 400
    assert visitor.get("/account").status_code == 200


def test_the_token_changes_when_someone_signs_in(intake_app, signed_up):
    _, email = signed_up
    visitor = Visitor(intake_app)
    before = visitor.csrf_token("/login")
    visitor.login(email, PASSWORD)
    assert forged(visitor, "/logout", {}, token=before).status_code == 400
    assert visitor.get("/account").status_code == 200
