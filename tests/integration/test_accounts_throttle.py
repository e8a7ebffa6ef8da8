"""Login throttling as someone guessing passwords meets it, across workers."""

from __future__ import annotations

import hashlib

from intake.accounts.throttle import ACCOUNT_LIMIT, ADDRESS_LIMIT
from tests.integration.conftest import PASSWORD, Visitor, build_intake_app, new_email

TOO_MANY = "Too many failed attempts. Wait 15 minutes, then try again."


def guess(app, email: str, *, address: str, password: str = "a wrong guess here"):
    return Visitor(app, address=address).login(email, password)


def test_an_account_refuses_even_the_right_password_after_a_burst_of_failures(intake_app, signed_up):
    _, email = signed_up
    for attempt in range(ACCOUNT_LIMIT):
        assert guess(intake_app, email, address=f"192.0.2.{attempt + 1}").status_code == 400
    locked = guess(intake_app, email, address="192.0.2.99", password=PASSWORD)
    assert locked.status_code == 429
    assert TOO_MANY in locked.get_data(as_text=True)
    assert Visitor(intake_app, address="192.0.2.100").get("/account").status_code == 303


def test_an_unknown_email_is_locked_out_exactly_like_a_real_one(intake_app, signed_up):
    _, known = signed_up
    unknown = new_email()
    answers = {}
    for email in (known, unknown):
        for attempt in range(ACCOUNT_LIMIT):
            guess(intake_app, email, address=f"198.51.100.{attempt + 1}")
        answers[email] = guess(intake_app, email, address="198.51.100.50")
    assert answers[known].status_code == answers[unknown].status_code == 429


def test_one_address_is_locked_out_after_a_burst_across_many_emails(intake_app, signed_up):
    _, email = signed_up
    for _ in range(ADDRESS_LIMIT):
        assert guess(intake_app, new_email(), address="203.0.113.50").status_code == 400
    assert guess(intake_app, email, address="203.0.113.50", password=PASSWORD).status_code == 429
    # The account itself is not locked: its owner elsewhere still gets in.
    assert guess(intake_app, email, address="203.0.113.51", password=PASSWORD).status_code == 303


def test_a_lock_set_by_one_worker_holds_in_another(database, intake_db, agent_transport, intake_app, signed_up):
    _, email = signed_up
    same_secret = intake_app.config["HAPEX"].session_secret
    other_worker = build_intake_app(database, intake_db, agent_transport, session_secret=same_secret)
    for attempt in range(ACCOUNT_LIMIT):
        guess(intake_app, email, address=f"192.0.2.{attempt + 1}")
    assert guess(other_worker, email, address="192.0.2.77", password=PASSWORD).status_code == 429


def test_a_lock_ends_when_its_time_is_up(intake_app, signed_up, owner_conn):
    _, email = signed_up
    for attempt in range(ACCOUNT_LIMIT):
        guess(intake_app, email, address=f"192.0.2.{attempt + 1}")
    assert guess(intake_app, email, address="192.0.2.9", password=PASSWORD).status_code == 429
    owner_conn.execute(
        "UPDATE login_throttle SET locked_until = now() - interval '1 second', "
        "window_started_at = now() - interval '16 minutes'"
    )
    assert guess(intake_app, email, address="192.0.2.9", password=PASSWORD).status_code == 303


def test_a_successful_login_forgets_the_accounts_earlier_failures(intake_app, signed_up):
    _, email = signed_up
    for attempt in range(ACCOUNT_LIMIT - 1):
        guess(intake_app, email, address=f"192.0.2.{attempt + 1}")
    assert guess(intake_app, email, address="192.0.2.30", password=PASSWORD).status_code == 303
    for attempt in range(ACCOUNT_LIMIT - 1):
        guess(intake_app, email, address=f"192.0.2.{attempt + 40}")
    assert guess(intake_app, email, address="192.0.2.31", password=PASSWORD).status_code == 303


def test_the_throttle_table_holds_keyed_hashes_not_emails_or_addresses(
    database, intake_db, agent_transport, intake_app, signed_up, owner_conn
):
    _, email = signed_up
    before = {bytes(r[0]) for r in owner_conn.execute("SELECT bucket FROM login_throttle")}
    guess(intake_app, email, address="192.0.2.123")
    first = {bytes(r[0]) for r in owner_conn.execute("SELECT bucket FROM login_throttle")} - before
    assert len(first) == 2
    plain = {hashlib.sha256(v.encode()).digest() for v in (email, email.lower(), "192.0.2.123")}
    assert not first & plain
    # Keyed with the app's secret: another secret files the same email elsewhere.
    other = build_intake_app(database, intake_db, agent_transport)
    guess(other, email, address="192.0.2.123")
    every = {bytes(r[0]) for r in owner_conn.execute("SELECT bucket FROM login_throttle")} - before
    assert len(every) == 4


def test_wrong_passwords_on_the_account_page_count_towards_the_lock(intake_app, signed_up):
    visitor, email = signed_up
    for _ in range(ACCOUNT_LIMIT):
        assert visitor.change_password("a wrong guess here", "a brand new passphrase").status_code == 400
    locked = visitor.change_password(PASSWORD, "a brand new passphrase")
    assert locked.status_code == 429
    assert visitor.delete_account(PASSWORD).status_code == 429
    assert Visitor(intake_app, address="192.0.2.200").login(email, PASSWORD).status_code == 429


def test_repeated_sign_ups_with_taken_emails_lock_the_address(intake_app, signed_up):
    _, taken = signed_up
    for _ in range(ADDRESS_LIMIT):
        # Answered as a new address is (tests/integration/test_accounts_email_links.py), yet counted.
        assert Visitor(intake_app, address="203.0.113.80").signup_form(taken, PASSWORD).status_code == 303
    probe = Visitor(intake_app, address="203.0.113.80").signup_form(new_email(), PASSWORD)
    assert probe.status_code == 429
