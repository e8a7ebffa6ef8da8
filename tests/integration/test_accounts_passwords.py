"""Passwords: argon2id at OWASP strength, and answers that do not tell accounts apart."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from tests.integration.conftest import PASSWORD, Visitor, build_intake_app, new_email

CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


def stored_hash(owner_conn, email: str) -> str:
    return owner_conn.execute("SELECT password_hash FROM users WHERE email = %s", [email]).fetchone()[0]


def comparable(response, *emails: str) -> tuple[int, str]:
    """Status and body with the per-request CSRF token and the typed email taken out."""
    body = CSRF_VALUE.sub(r"\1TOKEN", response.get_data(as_text=True))
    for email in emails:
        body = body.replace(email, "EMAIL")
    return response.status_code, body


@pytest.fixture
def agent_environ() -> dict[str, str]:
    """The agent checks passwords and re-hashes them: here at the production cost, as the intake's owasp_app hashes."""
    return {"AGENT_PASSWORD_HASH_PROFILE": "owasp"}


@pytest.fixture
def owasp_app(database, intake_db, agent_transport):
    return build_intake_app(database, intake_db, agent_transport, password_hash_profile="owasp")


def test_a_stored_password_hash_is_argon2id_at_or_above_owasp_parameters(owasp_app, owner_conn):
    email = new_email()
    assert Visitor(owasp_app).signup(email, PASSWORD).status_code == 303
    stored = stored_hash(owner_conn, email)
    params = extract_parameters(stored)
    assert params.type is Type.ID
    assert params.memory_cost >= 19 * 1024
    assert params.time_cost >= 2
    assert PASSWORD not in stored


def test_a_hash_made_with_weaker_settings_is_upgraded_at_the_next_login(owasp_app, intake_app, owner_conn):
    email = new_email()
    assert Visitor(intake_app).signup(email, PASSWORD, log_in=False).status_code == 303  # cheap test hash
    assert extract_parameters(stored_hash(owner_conn, email)).memory_cost < 19 * 1024
    assert Visitor(owasp_app).login(email, PASSWORD).status_code == 303
    upgraded = stored_hash(owner_conn, email)
    assert extract_parameters(upgraded).memory_cost >= 19 * 1024
    assert PasswordHasher().verify(upgraded, PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [("short pass", "Use between 12 and 256 characters."), ("x" * 257, "Use between 12 and 256 characters.")],
)
def test_sign_up_refuses_a_password_of_the_wrong_length(visitor, owner_conn, password, message):
    email = new_email()
    response = visitor.signup(email, password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", "sp ace@example.com", ""])
def test_sign_up_refuses_an_address_that_is_not_an_email(visitor, owner_conn, email):
    assert visitor.signup(email, PASSWORD).status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (0,)


def test_an_unknown_email_and_a_wrong_password_get_identical_answers(intake_app, signed_up):
    _, known = signed_up
    unknown = new_email()
    wrong = comparable(Visitor(intake_app).login(known, "not the password at all"), known)
    missing = comparable(Visitor(intake_app).login(unknown, "not the password at all"), unknown)
    assert wrong[0] == 400
    assert "The email or password is incorrect." in wrong[1]
    assert wrong == missing


def test_an_unknown_email_costs_the_same_argon2_work_as_a_wrong_password(owasp_app, agent_service_app):
    """Similar timing, shown without timing anything: both answers run exactly one argon2id
    verification with the same cost parameters (the unknown email against a dummy hash), in the
    agent, which alone checks passwords."""
    from argon2 import extract_parameters

    known = new_email()
    Visitor(owasp_app, address="198.51.100.30").signup(known, PASSWORD)
    passwords = agent_service_app.extensions["hapex_passwords"]
    real = passwords._hasher
    verified: list[tuple[int, int, int]] = []

    class CountingHasher:
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, stored_hash, password):
            parameters = extract_parameters(stored_hash)
            verified.append((parameters.memory_cost, parameters.time_cost, parameters.parallelism))
            return real.verify(stored_hash, password)

    passwords._hasher = CountingHasher()
    try:
        Visitor(owasp_app, address="192.0.2.10").login(known, "not the password at all")
        wrong = list(verified)
        verified.clear()
        Visitor(owasp_app, address="192.0.2.11").login(new_email(), "not the password at all")
        missing = list(verified)
    finally:
        passwords._hasher = real
    assert len(wrong) == 1 and missing == wrong
    memory, time_cost, _ = wrong[0]
    assert memory >= 19 * 1024 and time_cost >= 2


def test_sign_up_with_a_taken_email_answers_alike_whatever_the_password(intake_app, signed_up, owner_conn):
    _, taken = signed_up
    with_right = Visitor(intake_app, address="192.0.2.20").signup_form(taken, PASSWORD)
    with_wrong = Visitor(intake_app, address="192.0.2.21").signup_form(taken, "some other passphrase")
    assert comparable(with_right, taken) == comparable(with_wrong, taken)
    # Answered as a free address is; the owner gets an email (test_accounts_email_links.py).
    assert with_right.status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (1,)


def test_a_taken_email_differing_only_in_case_is_still_taken(intake_app, signed_up, owner_conn):
    _, taken = signed_up
    assert Visitor(intake_app).signup_form(taken.upper(), PASSWORD).status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_login_ignores_the_case_of_the_email(intake_app, signed_up):
    _, email = signed_up
    assert Visitor(intake_app).login(email.upper(), PASSWORD).status_code == 303


def test_a_wrong_current_password_changes_nothing(signed_up, owner_conn):
    visitor, email = signed_up
    before = stored_hash(owner_conn, email)
    response = visitor.change_password("not my password at all", "a brand new passphrase")
    assert response.status_code == 400
    assert "That password is not correct." in response.get_data(as_text=True)
    assert stored_hash(owner_conn, email) == before
    assert visitor.get("/account").status_code == 200


def test_after_a_password_change_only_the_new_password_opens_the_account(signed_up, intake_app):
    visitor, email = signed_up
    new_password = "a brand new passphrase"
    assert visitor.change_password(PASSWORD, new_password).status_code == 303
    assert "Your password was changed" in visitor.get("/account").get_data(as_text=True)
    assert Visitor(intake_app).login(email, PASSWORD).status_code == 400
    assert Visitor(intake_app).login(email, new_password).status_code == 303


def test_a_password_change_needs_the_new_password_twice_alike(signed_up, owner_conn):
    visitor, email = signed_up
    before = stored_hash(owner_conn, email)
    response = visitor.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "first new passphrase",
         "confirm_password": "other new passphrase"},
        token_from="/account",
    )
    assert response.status_code == 400
    assert "The two new passwords differ." in response.get_data(as_text=True)
    assert stored_hash(owner_conn, email) == before
