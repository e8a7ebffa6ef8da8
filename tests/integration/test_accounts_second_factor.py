"""Two-step sign-in with an authenticator app (TOTP) and recovery codes, through the real agent,
which alone seals and checks the secret; an attacker's tries: a replayed code, a recovery code used
twice, a reset that would skip the factor, a turn-off without a fresh proof."""

from __future__ import annotations

import os
import re
import time

import psycopg
import pyotp
import pytest

from agent_service.second_factor.views import DRIFT_STEPS, STEP_SECONDS
from agent_service.vault import Keyring
from agent_service.vault.startup import MissingCredentialKeys, check_credential_keys
from tests.agent_api import build_agent_app
from tests.integration.conftest import AGENT_TOKEN, PASSWORD, Visitor, WSGIAdapter, build_intake_app, new_email
from tests.integration.test_accounts_email_links import NEW_PASSWORD, mailbox  # noqa: F401, F811 - a fixture
from tests.integration.test_vault_rotation import rotate_cli

KEY = re.compile(r'<code id="totp-key">([A-Z2-7]+)</code>')
CODES = re.compile(r"<li><code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code></li>")


def fresh_code(totp: pyotp.TOTP, used: set[int]) -> str:
    """A code of a later time step than any spent (used holds their steps): the current step's, else the
    next one's, which the agent also takes (clock drift); only when that one is spent too, the clock's next."""
    while True:
        current = int(time.time() // STEP_SECONDS)
        step = max(current, max(used) + 1) if used else current
        if step <= current + DRIFT_STEPS:
            used.add(step)
            return totp.at(step * STEP_SECONDS)
        time.sleep(0.2)


def enrol(visitor: Visitor) -> tuple[pyotp.TOTP, list[str], set[int]]:
    page = visitor.post("/account/second-factor/enrol", {}, token_from="/account").get_data(as_text=True)
    assert "<svg" in page and "<script" not in page
    totp = pyotp.TOTP(KEY.search(page).group(1))  # type: ignore[union-attr]
    used: set[int] = set()
    done = visitor.post("/account/second-factor/confirm", {"code": fresh_code(totp, used)}, token_from="/account")
    assert done.status_code == 200
    codes = CODES.findall(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes, used


def log_in_with_code(app, email: str, password: str, code: str, address: str = "192.0.2.90"):
    visitor = Visitor(app, address=address)
    first = visitor.login(email, password)
    assert first.status_code == 303 and first.headers["Location"] == "/login/code"
    assert visitor.session_cookie() is None  # no session before the code
    return visitor, visitor.post("/login/code", {"code": code})


def test_turning_on_stores_only_a_sealed_secret_and_hashed_codes(signed_up, owner_conn, database):
    visitor, email = signed_up
    totp, codes, _ = enrol(visitor)
    ciphertext, confirmed = owner_conn.execute("SELECT ciphertext, confirmed_at FROM user_totp").fetchone()
    assert confirmed is not None and totp.secret.encode() not in bytes(ciphertext)
    stored = [bytes(r[0]) for r in owner_conn.execute("SELECT code_hash FROM recovery_codes")]
    assert len(stored) == 10 and not any(c.encode() in b"".join(stored) for c in codes)
    with psycopg.connect(database.intake_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT ciphertext FROM user_totp")
    assert "unused recovery codes" in visitor.get("/account").get_data(as_text=True)
    kinds = [r[0] for r in owner_conn.execute("SELECT kind FROM account_emails ORDER BY created_at")]
    assert "second_factor_on" in kinds


def test_sign_in_asks_for_the_code_and_refuses_a_replayed_one(intake_app, signed_up):
    visitor, email = signed_up
    totp, _, used = enrol(visitor)
    _, wrong = log_in_with_code(intake_app, email, PASSWORD, "000000" if totp.now() != "000000" else "111111")
    assert wrong.status_code == 400
    code = fresh_code(totp, used)
    browser, right = log_in_with_code(intake_app, email, PASSWORD, code)
    assert right.status_code == 303 and browser.get("/account").status_code == 200
    _, replayed = log_in_with_code(intake_app, email, PASSWORD, code, address="192.0.2.91")
    assert replayed.status_code == 400


def test_a_recovery_code_signs_in_once(intake_app, signed_up):
    visitor, email = signed_up
    _, codes, _ = enrol(visitor)
    _, first = log_in_with_code(intake_app, email, PASSWORD, codes[3].lower())
    assert first.status_code == 303
    _, second = log_in_with_code(intake_app, email, PASSWORD, codes[3])
    assert second.status_code == 400


def test_the_code_step_needs_the_password_step_first(intake_app):
    answer = Visitor(intake_app).post("/login/code", {"code": "123456"}, token_from="/login")
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"


def test_a_password_reset_still_asks_for_the_second_factor(intake_app, signed_up, mailbox):  # noqa: F811
    visitor, email = signed_up
    totp, _, used = enrol(visitor)
    stranger = Visitor(intake_app, address="198.51.100.9")
    stranger.post("/password/forgot", {"email": email})
    path = mailbox.link_path(email, "Reset your Hapex password")
    stranger.post(path, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}, token_from=path)
    after = Visitor(intake_app, address="198.51.100.10").login(email, NEW_PASSWORD)
    assert after.status_code == 303 and after.headers["Location"] == "/login/code"
    _, signed_in = log_in_with_code(intake_app, email, NEW_PASSWORD, fresh_code(totp, used))
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/automations"


def test_turning_off_needs_the_password_and_a_code(intake_app, signed_up, owner_conn):
    visitor, email = signed_up
    totp, codes, used = enrol(visitor)
    no_code = visitor.post("/account/second-factor/off", {"factor_password": PASSWORD, "code": "123456" if
                                                            totp.now() != "123456" else "654321"},
                           token_from="/account")
    assert no_code.status_code == 400
    bad_password = visitor.post("/account/second-factor/off", {"factor_password": "not my password", "code": codes[0]},
                                token_from="/account")
    assert bad_password.status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM user_totp").fetchone() == (1,)
    off = visitor.post("/account/second-factor/off", {"factor_password": PASSWORD, "code": fresh_code(totp, used)},
                       token_from="/account")
    assert off.status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM user_totp").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM recovery_codes").fetchone() == (0,)
    assert Visitor(intake_app).login(email, PASSWORD).headers["Location"] == "/automations"
    kinds = [r[0] for r in owner_conn.execute("SELECT kind FROM account_emails")]
    assert "second_factor_off" in kinds


def test_forged_posts_to_the_second_factor_routes_change_nothing(intake_app, signed_up, owner_conn):
    from tests.integration.conftest import BASE_URL

    visitor, _ = signed_up
    totp, _, used = enrol(visitor)
    for route in ("/account/second-factor/enrol", "/account/second-factor/confirm", "/account/second-factor/off",
                  "/login/code"):
        answer = visitor.client.post(route, data={"factor_password": PASSWORD, "code": totp.now()}, base_url=BASE_URL,
                                     headers={"Referer": BASE_URL + "/"})
        assert answer.status_code == 400, route
    assert owner_conn.execute("SELECT count(*) FROM user_totp WHERE confirmed_at IS NOT NULL").fetchone() == (1,)


def test_the_export_says_two_step_sign_in_is_on_without_its_secret_or_codes(signed_up, owner_conn):
    import json

    visitor, _ = signed_up
    totp, codes, _ = enrol(visitor)
    text = visitor.get("/account/export").get_data(as_text=True)
    archive = json.loads(text)
    assert len(archive["second_factors"]) == 1 and archive["second_factors"][0]["confirmed_at"]
    assert len(archive["recovery_codes"]) == 10
    assert totp.secret not in text and not any(c in text for c in codes)
    ciphertext = bytes(owner_conn.execute("SELECT ciphertext FROM user_totp").fetchone()[0])
    assert ciphertext.hex() not in text


def test_an_owner_can_require_a_second_factor_of_everyone(intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    from tests.integration.test_accounts_members import MEMBER_PASSWORD, invite, join

    owner, _ = signed_up
    refused = owner.post("/account/members/require-second-factor", {"required": "on"}, token_from="/account/members")
    assert refused.status_code == 303
    assert owner_conn.execute("SELECT require_second_factor FROM clients").fetchone() == (False,)
    enrol(owner)
    owner.post("/account/members/require-second-factor", {"required": "on"}, token_from="/account/members")
    assert owner_conn.execute("SELECT require_second_factor FROM clients").fetchone() == (True,)

    member_email = new_email()
    invite(owner, member_email)
    member = join(intake_app, mailbox, member_email)
    for page in ("/automations", "/connections", "/account"):
        answer = member.get(page)
        assert answer.status_code == 303 and answer.headers["Location"] == "/account/second-factor/required"
    member_totp, _, used = enrol_from(member, "/account/second-factor/required")
    assert member.get("/automations").status_code == 200
    again = Visitor(intake_app, address="192.0.2.190")
    assert again.login(member_email, MEMBER_PASSWORD).headers["Location"] == "/login/code"
    assert again.post("/login/code", {"code": fresh_code(member_totp, used)}).status_code == 303


def enrol_from(visitor: Visitor, page: str) -> tuple[pyotp.TOTP, list[str], set[int]]:
    """Enrolment as a member walked to it does: the token comes from the page they are sent to."""
    html = visitor.post("/account/second-factor/enrol", {}, token_from=page).get_data(as_text=True)
    totp = pyotp.TOTP(KEY.search(html).group(1))  # type: ignore[union-attr]
    used: set[int] = set()
    done = visitor.post("/account/second-factor/confirm", {"code": fresh_code(totp, used)}, token_from=page)
    assert done.status_code == 200
    return totp, CODES.findall(done.get_data(as_text=True)), used


def intake_with_agent_key(database, intake_db, agent_db, key: bytes):
    """The intake in front of an agent that holds only `key` as its credential key."""
    agent = build_agent_app(database, agent_db, service_token=AGENT_TOKEN, key=key)
    return build_intake_app(database, intake_db, WSGIAdapter(agent))


def test_key_rotation_re_seals_totp_secrets_so_the_retired_key_can_be_dropped(
    database, intake_db, agent_db, owner_conn, monkeypatch, capsys
):
    old_key, new_key = os.urandom(32), os.urandom(32)
    old_id, new_id = Keyring(old_key).primary_key_id, Keyring(new_key).primary_key_id
    before = Visitor(intake_with_agent_key(database, intake_db, agent_db, old_key))
    email = new_email()
    assert before.signup(email, PASSWORD).status_code == 303
    totp, _, used = enrol(before)
    assert owner_conn.execute("SELECT key_id FROM user_totp").fetchone() == (old_id,)

    # Without the old key the agent refuses to start: the sealed secret still needs it.
    with pytest.raises(MissingCredentialKeys, match=r"1 TOTP secret\)"):
        check_credential_keys(agent_db, Keyring(new_key))

    code, out = rotate_cli(monkeypatch, capsys, database, primary=new_key, retired=[old_key])
    assert code == 0, out
    assert "0 credential(s), 0 stored step output(s) and 1 TOTP secret(s) to re-encrypt" in out
    assert "and 1 TOTP secret(s) rotated" in out and totp.secret not in out
    assert owner_conn.execute("SELECT key_id FROM user_totp").fetchone() == (new_id,)
    assert check_credential_keys(agent_db, Keyring(new_key)) == {new_id: 1}

    # The retired key is dropped: the agent holds only the new one, and a code still verifies.
    after = intake_with_agent_key(database, intake_db, agent_db, new_key)
    _, answer = log_in_with_code(after, email, PASSWORD, fresh_code(totp, used))
    assert answer.status_code == 303 and answer.headers["Location"] != "/login/code"
