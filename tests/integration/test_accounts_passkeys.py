"""Passkeys on the intake's pages, through the real agent, with a software authenticator: add one,
sign in with it instead of the password and as the second step, remove it with a fresh proof; only
the passkey pages carry a script (by nonce), and a replayed answer or a missing proof is refused."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.integration.conftest import BASE_URL, PASSWORD, Visitor, build_intake_app, new_email
from tests.integration.test_accounts_email_links import mailbox  # noqa: F401 - a fixture
from tests.passkey_authenticator import SoftAuthenticator, b64url

OPTIONS = re.compile(r'data-options="([^"]*)"')
NONCE = re.compile(r'<script nonce="([^"]+)" src="/static/passkeys\.js"></script>')
CODES = re.compile(r"<li><code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code></li>")


@pytest.fixture
def agent_environ() -> dict[str, str]:
    return {"INTAKE_PUBLIC_URL": BASE_URL}


@pytest.fixture
def intake_app(database, intake_db, agent_transport):
    return build_intake_app(database, intake_db, agent_transport, public_url=BASE_URL)


@pytest.fixture
def device() -> SoftAuthenticator:
    return SoftAuthenticator(rp_id="intake.test", origin=BASE_URL)


def ceremony(response) -> dict:
    """The agent's options a passkey page hands its script, after checking the page may run only that script."""
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    nonce = NONCE.search(page).group(1)  # type: ignore[union-attr]
    assert page.count("<script") == 1
    assert f"script-src 'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
    return json.loads(html.unescape(OPTIONS.search(page).group(1)))  # type: ignore[union-attr]


def add_passkey(visitor: Visitor, device: SoftAuthenticator, label: str = "Work laptop", password: str = PASSWORD):
    options = ceremony(visitor.post("/account/passkeys/new", {"label": label, "password": password},
                                    token_from="/account"))
    return visitor.post("/account/passkeys", {"label": label, "credential": json.dumps(device.register(options))},
                        token_from="/account")


def emails(owner_conn) -> list[str]:
    return [r[0] for r in owner_conn.execute("SELECT kind FROM account_emails ORDER BY created_at")]


def test_a_first_passkey_is_added_with_recovery_codes_and_emailed(signed_up, device, owner_conn):
    visitor, _ = signed_up
    done = add_passkey(visitor, device)
    assert done.status_code == 200 and len(CODES.findall(done.get_data(as_text=True))) == 10
    account = visitor.get("/account").get_data(as_text=True)
    assert "Work laptop" in account and "Never" in account
    assert "passkey_added" in emails(owner_conn)
    second = add_passkey(visitor, SoftAuthenticator(rp_id="intake.test", origin=BASE_URL), "Phone")
    assert second.status_code == 303  # codes are not replaced by a second passkey
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (2,)


def test_a_passkey_signs_in_instead_of_the_password(intake_app, signed_up, device):
    visitor, _ = signed_up
    add_passkey(visitor, device)
    visitor.logout()
    browser = Visitor(intake_app, address="192.0.2.10")
    login = browser.get("/login")
    assert "Sign in with a passkey" in login.get_data(as_text=True) and "<script" not in login.get_data(as_text=True)
    assert "script-src 'none'" in login.headers["Content-Security-Policy"]
    options = ceremony(browser.post("/login/passkey", {}, token_from="/login"))
    answer = json.dumps(device.assertion(options))
    signed_in = browser.post("/login/passkey/finish", {"credential": answer}, token_from="/login")
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/automations"
    assert browser.get("/account").status_code == 200
    # The same answer again, in another browser: refused, no session.
    thief = Visitor(intake_app, address="192.0.2.11")
    replayed = thief.post("/login/passkey/finish", {"credential": answer}, token_from="/login")
    assert replayed.status_code == 303 and replayed.headers["Location"] == "/login"
    assert thief.session_cookie() is None


def test_after_the_password_a_passkey_is_the_second_step(intake_app, signed_up, device):
    visitor, email = signed_up
    add_passkey(visitor, device)
    visitor.logout()
    browser = Visitor(intake_app, address="192.0.2.20")
    first = browser.login(email, PASSWORD)
    assert first.status_code == 303 and first.headers["Location"] == "/login/code"
    assert browser.session_cookie() is None
    assert "Use a passkey instead" in browser.get("/login/code").get_data(as_text=True)
    options = ceremony(browser.post("/login/code/passkey", {}, token_from="/login/code"))
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(device.credential_id)]
    answer = json.dumps(device.assertion(options))
    done = browser.post("/login/code/passkey/finish", {"credential": answer}, token_from="/login/code")
    assert done.status_code == 303 and done.headers["Location"] == "/automations"
    assert browser.session_cookie() is not None and browser.get("/account").status_code == 200
    # The pending sign-in's ticket was spent with it: its page is gone, and the answer cannot be used again.
    again = browser.post("/login/code/passkey/finish", {"credential": answer}, token_from="/account")
    assert again.headers["Location"] == "/login"
    # Without the password step first there is no second step to finish.
    stranger = Visitor(intake_app, address="192.0.2.21")
    alone = stranger.post("/login/code/passkey/finish", {"credential": answer}, token_from="/login")
    assert alone.headers["Location"] == "/login" and stranger.session_cookie() is None


def test_a_wrong_code_still_offers_the_passkey_instead(intake_app, signed_up, device):
    visitor, email = signed_up
    add_passkey(visitor, device)
    visitor.logout()
    browser = Visitor(intake_app, address="192.0.2.22")
    assert browser.login(email, PASSWORD).headers["Location"] == "/login/code"
    wrong = browser.post("/login/code", {"code": "000000"}, token_from="/login/code")
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "That code is not right" in page
    assert "Use a passkey instead" in page


def test_removing_a_passkey_needs_the_password_and_a_code_or_a_passkey(signed_up, device, owner_conn):
    visitor, _ = signed_up
    codes = CODES.findall(add_passkey(visitor, device).get_data(as_text=True))
    passkey_id = owner_conn.execute("SELECT passkey_id FROM user_passkeys").fetchone()[0]
    path = f"/account/passkeys/{passkey_id}/remove"
    options = ceremony(visitor.get(path))
    assertion = json.dumps(device.assertion(options))
    assert visitor.post(path, {"password": "wrong password here", "credential": assertion}).status_code == 400
    assert visitor.post(path, {"password": PASSWORD, "code": "ABCD-EFGH-IJKL-MNOP"}).status_code == 400
    assert visitor.post(path, {"password": PASSWORD}).status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (1,)
    # With the password, an answer to the page's challenge removes it.
    options = ceremony(visitor.get(path))
    done = visitor.post(path, {"password": PASSWORD, "credential": json.dumps(device.assertion(options))})
    assert done.status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (0,)
    # No factor left: the recovery codes went with it; the change was emailed.
    assert owner_conn.execute("SELECT count(*) FROM recovery_codes").fetchone() == (0,)
    assert "passkey_removed" in emails(owner_conn)
    assert codes


def test_a_recovery_code_with_the_password_removes_a_passkey(signed_up, device, owner_conn):
    visitor, _ = signed_up
    codes = CODES.findall(add_passkey(visitor, device).get_data(as_text=True))
    passkey_id = owner_conn.execute("SELECT passkey_id FROM user_passkeys").fetchone()[0]
    path = f"/account/passkeys/{passkey_id}/remove"
    assert visitor.post(path, {"password": PASSWORD, "code": codes[0]}).status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (0,)


def test_another_users_passkey_cannot_be_removed_or_shown(intake_app, signed_up, device, owner_conn):
    visitor, _ = signed_up
    add_passkey(visitor, device)
    passkey_id = owner_conn.execute("SELECT passkey_id FROM user_passkeys").fetchone()[0]
    other = Visitor(intake_app, address="192.0.2.30")
    other.signup(new_email(), PASSWORD)
    assert other.get(f"/account/passkeys/{passkey_id}/remove").status_code == 404
    assert other.post(f"/account/passkeys/{passkey_id}/remove", {"password": PASSWORD},
                      token_from="/account").status_code == 404


def test_a_passkey_counts_as_the_second_factor_an_owner_requires(intake_app, signed_up, device, owner_conn):
    visitor, email = signed_up
    refused = visitor.post("/account/members/require-second-factor", {"required": "on"}, token_from="/account")
    assert refused.status_code == 303
    assert owner_conn.execute("SELECT require_second_factor FROM clients").fetchone() == (False,)
    add_passkey(visitor, device)
    visitor.post("/account/members/require-second-factor", {"required": "on"}, token_from="/account")
    assert owner_conn.execute("SELECT require_second_factor FROM clients").fetchone() == (True,)
    assert visitor.get("/automations").status_code == 200  # not walked to enrolment: a passkey is a factor
    # And at sign-in the agent owes it: the password alone starts no session, only the passkey step.
    visitor.logout()
    browser = Visitor(intake_app, address="192.0.2.40")
    first = browser.login(email, PASSWORD)
    assert first.headers["Location"] == "/login/code" and browser.session_cookie() is None
    options = ceremony(browser.post("/login/code/passkey", {}, token_from="/login/code"))
    done = browser.post("/login/code/passkey/finish", {"credential": json.dumps(device.assertion(options))},
                        token_from="/login/code")
    assert done.headers["Location"] == "/automations" and browser.get("/automations").status_code == 200


def test_every_other_page_stays_script_free(signed_up):
    visitor, _ = signed_up
    for path in ("/account", "/automations", "/login/code", "/security", "/data-and-privacy"):
        response = visitor.get(path)
        assert "<script" not in response.get_data(as_text=True), path
        assert "script-src 'none'" in response.headers["Content-Security-Policy"], path


def test_without_a_public_url_no_passkey_is_offered(database, intake_db, agent_transport):
    app = build_intake_app(database, intake_db, agent_transport)
    visitor = Visitor(app)
    assert "Sign in with a passkey" not in visitor.get("/login").get_data(as_text=True)
    visitor.signup(new_email(), PASSWORD)
    assert "not available on this deployment" in visitor.get("/account").get_data(as_text=True)


def test_the_export_lists_passkeys_by_name_and_dates_without_their_keys(signed_up, device):
    visitor, _ = signed_up
    add_passkey(visitor, device)
    text = visitor.get("/account/export").get_data(as_text=True)
    archive = json.loads(text)
    assert [p["label"] for p in archive["passkeys"]] == ["Work laptop"]
    assert b64url(device.credential_id) not in text and "public_key" not in text


def test_a_member_walked_to_enrolment_can_add_a_passkey_there(intake_app, signed_up, device, mailbox):  # noqa: F811
    from tests.integration.test_accounts_members import MEMBER_PASSWORD, invite, join

    owner, _ = signed_up
    add_passkey(owner, device)
    owner.post("/account/members/require-second-factor", {"required": "on"}, token_from="/account/members")
    member_email = new_email()
    invite(owner, member_email)
    member = join(intake_app, mailbox, member_email)
    assert member.get("/automations").headers["Location"] == "/account/second-factor/required"
    phone = SoftAuthenticator(rp_id="intake.test", origin=BASE_URL)
    page = "/account/second-factor/required"
    options = ceremony(member.post("/account/passkeys/new", {"label": "Phone", "password": MEMBER_PASSWORD},
                                   token_from=page))
    done = member.post("/account/passkeys", {"label": "Phone", "credential": json.dumps(phone.register(options))},
                       token_from=page)
    assert done.status_code == 200 and len(CODES.findall(done.get_data(as_text=True))) == 10
    assert member.get("/automations").status_code == 200


def test_adding_and_removing_a_passkey_are_emailed_to_the_user(signed_up, device, owner_conn, mailbox):  # noqa: F811
    visitor, email = signed_up
    codes = CODES.findall(add_passkey(visitor, device).get_data(as_text=True))
    passkey_id = owner_conn.execute("SELECT passkey_id FROM user_passkeys").fetchone()[0]
    visitor.post(f"/account/passkeys/{passkey_id}/remove", {"password": PASSWORD, "code": codes[0]})
    subjects = [m["Subject"] for m in mailbox.to(email)]
    assert "A passkey was added to your Hapex account" in subjects
    assert "A passkey was removed from your Hapex account" in subjects
    bodies = "\n".join(m.get_content() for m in mailbox.to(email))
    assert b64url(device.credential_id) not in bodies and "Work laptop" not in bodies


def test_a_stolen_session_alone_cannot_add_a_passkey_that_would_sign_in_without_the_password(signed_up, owner_conn):
    """A passkey signs in without the password and outlives a password reset, so adding one asks for the
    password as removing one does: a session cookie alone must not buy a lasting way in."""
    thief, _ = signed_up
    for given in ({"label": "Thief"}, {"label": "Thief", "password": "not the password at all"}):
        refused = thief.post("/account/passkeys/new", given, token_from="/account")
        assert refused.status_code == 400
        assert "<script" not in refused.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM passkey_challenges").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (0,)


def test_a_deeply_nested_answer_is_a_refusal_not_a_server_error(intake_app, signed_up, device):
    """json.loads raises RecursionError (not ValueError) past ~1000 levels, well within the field's 16 KB."""
    visitor, _ = signed_up
    add_passkey(visitor, device)
    deep = "[" * 8000 + "]" * 8000
    stranger = Visitor(intake_app, address="192.0.2.11")
    ceremony(stranger.post("/login/passkey", {}, token_from="/login"))
    refused = stranger.post("/login/passkey/finish", {"credential": deep}, token_from="/login")
    assert refused.status_code == 303 and refused.headers["Location"] == "/login"
    passkey_id = visitor.get("/account").get_data(as_text=True).split("/account/passkeys/")[1].split("/")[0]
    path = f"/account/passkeys/{passkey_id}/remove"
    removal = visitor.post(path, {"password": PASSWORD, "credential": deep}, token_from=path)
    assert removal.status_code == 400
