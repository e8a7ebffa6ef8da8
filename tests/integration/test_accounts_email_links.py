"""Account emails through the local mail catcher over real SMTP: verification, "you already have an
account", password reset, and an attacker's tries with the links (used twice, after a password
change, tampered, expired); never a token or an address in a log."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent_service.notifications.account_emails import deliver_account_emails
from agent_service.notifications.mailer import SMTPSettings
from hapex.localstack import mail_catcher
from tests.integration.conftest import BASE_URL, PASSWORD, Visitor, new_email

NEW_PASSWORD = "a new and longer passphrase"  # noqa: S105 - a test's password
LINK = re.compile(r"https?://\S+/email-link/[A-Za-z0-9_-]{43}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """The local stack's catcher on a free port, and the worker step that sends account emails to it."""

    def __init__(self, folder: Path, agent_db) -> None:
        self.folder = folder
        self.port = free_port()
        self.controller = mail_catcher.start(folder, self.port)
        self.settings = SMTPSettings(host="127.0.0.1", port=self.port, sender=mail_catcher.LOCAL_SENDER,
                                     starttls=False)
        self.agent_db = agent_db

    def deliver(self, link_origin: str | None = None) -> dict[str, int]:
        return deliver_account_emails(self.agent_db, self.settings, link_origin=link_origin)

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for p in mail_catcher.messages(self.folder)]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        self.deliver()
        return [m for m in self.messages() if m["To"] == address]

    def link_path(self, address: str, subject: str) -> str:
        found = [m for m in self.to(address) if m["Subject"] == subject]
        assert found, f"no email {subject!r}"
        body = found[-1].get_content()
        match = LINK.search(body)
        assert match, body
        return urlsplit(match.group(0)).path


@pytest.fixture
def mailbox(tmp_path, agent_db):
    box = Mailbox(tmp_path / "mail", agent_db)
    yield box
    box.controller.stop()


VERIFY = "Confirm your email address for Hapex"
RESET = "Reset your Hapex password"


def follow(visitor: Visitor, path: str, data: dict[str, str] | None = None):
    return visitor.post(path, data or {}, token_from=path)


def test_sign_up_sends_a_link_that_confirms_the_address_once(intake_app, visitor, mailbox, owner_conn):
    address = new_email()
    answer = visitor.signup(address, PASSWORD, verified=False)
    assert answer.status_code == 303  # signed in through the login page, address not yet confirmed
    page = visitor.get("/connections").get_data(as_text=True)
    assert "Confirm your email address" in page and "Send the email again" in page
    path = mailbox.link_path(address, VERIFY)
    assert follow(visitor, path).status_code == 303
    assert "Confirm your email address" not in visitor.get("/connections").get_data(as_text=True)
    assert owner_conn.execute("SELECT email_verified_at IS NOT NULL FROM users").fetchone() == (True,)
    again = follow(visitor, path)
    assert again.status_code == 410 and "This link no longer works" in again.get_data(as_text=True)
    # Only its hash is stored, and no link is in the row.
    stored = owner_conn.execute("SELECT token_hash FROM account_emails WHERE kind = 'verify_email'").fetchone()
    assert stored[0] is not None and path.rsplit("/", 1)[1].encode() not in bytes(stored[0])


def test_a_link_points_at_the_agents_own_intake_address_whatever_host_the_intake_wrote(
        intake_app, visitor, mailbox, owner_conn):
    address = new_email()
    visitor.signup(address, PASSWORD, verified=False)
    # What a compromised intake could write: its own host, to receive the token when the person clicks.
    owner_conn.execute("UPDATE account_emails SET link_base = 'https://evil.example/email-link/'")
    assert mailbox.deliver(link_origin="https://hapex.example/") == {"sent": 1}
    (sent,) = [m for m in mailbox.messages() if m["To"] == address]
    body = sent.get_content()
    assert "evil.example" not in body
    link = LINK.search(body)
    assert link and link.group(0).startswith("https://hapex.example/email-link/"), body


def test_an_unconfirmed_account_may_look_around_but_not_connect_or_enable(intake_app, visitor, mailbox):
    visitor.signup(new_email(), PASSWORD, verified=False)
    assert visitor.get("/automations").status_code == 200
    refused = visitor.post("/connections/api-key", {"provider": "anthropic", "api_key": "sk-test-0000"},
                           token_from="/connections")
    assert refused.status_code == 403
    assert "Confirm your email address first" in refused.get_data(as_text=True)


def test_send_again_is_limited(intake_app, visitor, mailbox, owner_conn):
    address = new_email()
    visitor.signup(address, PASSWORD, verified=False)
    answers = [visitor.post("/account/verify/resend", {}, token_from="/account") for _ in range(4)]
    assert all(a.status_code == 303 for a in answers)
    assert "several confirmation emails" in visitor.get("/account").get_data(as_text=True)
    count = owner_conn.execute("SELECT count(*) FROM account_emails WHERE kind = 'verify_email'").fetchone()
    assert count == (3,)


def test_sign_up_with_a_taken_address_answers_alike_and_tells_the_owner_by_email(intake_app, mailbox, owner_conn):
    taken = new_email()
    Visitor(intake_app, address="192.0.2.30").signup(taken, PASSWORD)
    fresh = Visitor(intake_app, address="192.0.2.31").signup_form(new_email(), PASSWORD)
    again = Visitor(intake_app, address="192.0.2.32").signup_form(taken, "some other passphrase")
    assert (fresh.status_code, fresh.headers["Location"]) == (again.status_code, again.headers["Location"])
    assert set(fresh.headers.getlist("Set-Cookie")) == set() == set(again.headers.getlist("Set-Cookie")) or (
        [c.split("=")[0] for c in fresh.headers.getlist("Set-Cookie")]
        == [c.split("=")[0] for c in again.headers.getlist("Set-Cookie")])
    subjects = [m["Subject"] for m in mailbox.to(taken)]
    assert "You already have a Hapex account" in subjects
    assert owner_conn.execute("SELECT count(*) FROM users WHERE email = %s", [taken]).fetchone() == (1,)


def test_forgot_password_answers_alike_for_any_address(intake_app, signed_up, mailbox):
    _, known = signed_up
    answers = [Visitor(intake_app, address=f"192.0.2.4{i}").post("/password/forgot", {"email": e})
               for i, e in enumerate([known, new_email()])]
    assert answers[0].status_code == answers[1].status_code == 303
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert [m["Subject"] for m in mailbox.to(known)].count(RESET) == 1


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(intake_app, signed_up, mailbox):
    browser, address = signed_up
    old_cookie = browser.session_cookie()
    stranger = Visitor(intake_app, address="198.51.100.5")
    stranger.post("/password/forgot", {"email": address})
    path = mailbox.link_path(address, RESET)
    done = follow(stranger, path, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    # The old session is gone: its cookie now leads to the login page.
    browser.set_session_cookie(old_cookie or "")
    assert browser.get("/account").status_code == 303
    assert Visitor(intake_app).login(address, PASSWORD).status_code == 400
    assert Visitor(intake_app).login(address, NEW_PASSWORD).status_code == 303
    # Used twice: refused with a clear page, the password unchanged.
    twice = stranger.post(path, {"new_password": "yet another passphrase!",
                                 "confirm_password": "yet another passphrase!"}, token_from="/password/forgot")
    assert twice.status_code == 410
    assert Visitor(intake_app).login(address, NEW_PASSWORD).status_code == 303
    assert "Your Hapex password was changed" in [m["Subject"] for m in mailbox.to(address)]


def test_a_reset_link_stops_working_once_the_password_is_changed(intake_app, signed_up, mailbox):
    browser, address = signed_up
    Visitor(intake_app, address="198.51.100.6").post("/password/forgot", {"email": address})
    path = mailbox.link_path(address, RESET)
    assert browser.change_password(PASSWORD, NEW_PASSWORD).status_code == 303
    late = Visitor(intake_app).get(path)
    assert late.status_code == 410


def test_a_reset_link_is_bound_to_its_own_user(intake_app, mailbox, owner_conn):
    mine, theirs = new_email(), new_email()
    Visitor(intake_app, address="192.0.2.50").signup(mine, PASSWORD)
    Visitor(intake_app, address="192.0.2.51").signup(theirs, PASSWORD)
    attacker = Visitor(intake_app, address="192.0.2.52")
    attacker.post("/password/forgot", {"email": mine})
    path = mailbox.link_path(mine, RESET)
    follow(attacker, path, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert Visitor(intake_app).login(theirs, PASSWORD).status_code == 303
    assert Visitor(intake_app).login(mine, NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize("tamper", [
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),
    lambda p: p + "x",
    lambda p: p[:-5],
    lambda p: p.rsplit("/", 1)[0] + "/" + "%00" * 3,
])
def test_a_tampered_link_gets_a_clear_page_never_a_500(intake_app, signed_up, mailbox, tamper):
    _, address = signed_up
    Visitor(intake_app, address="192.0.2.60").post("/password/forgot", {"email": address})
    path = tamper(mailbox.link_path(address, RESET))
    visitor = Visitor(intake_app)
    answer = visitor.get(path)
    # A NUL byte is refused at the input boundary (400) before any route; the rest reach the link page.
    assert answer.status_code in (400, 404, 410)
    posted = visitor.client.post(path, data={}, base_url=BASE_URL)
    assert 400 <= posted.status_code < 500


def test_an_expired_link_gets_a_clear_page(intake_app, signed_up, mailbox, owner_conn):
    _, address = signed_up
    Visitor(intake_app, address="192.0.2.61").post("/password/forgot", {"email": address})
    path = mailbox.link_path(address, RESET)
    owner_conn.execute("UPDATE account_emails SET expires_at = now() - interval '1 second'")
    answer = Visitor(intake_app).get(path)
    assert answer.status_code == 410 and "expired" in answer.get_data(as_text=True)


def test_reset_requests_are_throttled_per_address_and_per_network(intake_app, signed_up, mailbox):
    _, address = signed_up
    same_network = Visitor(intake_app, address="192.0.2.70")
    statuses = [same_network.post("/password/forgot", {"email": address}).status_code for _ in range(6)]
    assert statuses[:5] == [303] * 5 and statuses[5] == 429
    # Login for that account is not locked by someone asking for resets.
    assert Visitor(intake_app, address="192.0.2.71").login(address, PASSWORD).status_code == 303
    crowd = Visitor(intake_app, address="192.0.2.72")
    network = [crowd.post("/password/forgot", {"email": new_email()}).status_code for _ in range(21)]
    assert network[-1] == 429
    # At most three reset emails to one user per window, however many were asked.
    assert [m["Subject"] for m in mailbox.to(address)].count(RESET) == 3


def test_no_token_or_address_reaches_a_log(intake_app, mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    address = new_email()
    visitor = Visitor(intake_app, address="192.0.2.80")
    visitor.signup(address, PASSWORD, verified=False)
    visitor.post("/password/forgot", {"email": address})
    path = mailbox.link_path(address, RESET)
    follow(Visitor(intake_app), path, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    mailbox.deliver()
    token = path.rsplit("/", 1)[1]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert token not in logged and address not in logged
    assert "/email-link/<secret>" in logged


def test_forged_posts_to_the_account_email_routes_change_nothing(intake_app, mailbox, owner_conn):
    address = new_email()
    visitor = Visitor(intake_app)
    visitor.signup(address, PASSWORD, verified=False)
    path = mailbox.link_path(address, VERIFY)
    for route in (path, "/account/verify/resend", "/password/forgot"):
        answer = visitor.client.post(route, data={"email": address}, base_url=BASE_URL,
                                     headers={"Referer": BASE_URL + "/"})
        assert answer.status_code == 400, route
    assert owner_conn.execute("SELECT email_verified_at FROM users").fetchone() == (None,)
    assert owner_conn.execute("SELECT count(*) FROM account_emails").fetchone() == (1,)


def test_asking_for_an_email_wakes_a_worker_with_ids_only(intake_app, owner_conn):
    address = new_email()
    Visitor(intake_app).signup(address, PASSWORD, verified=False, log_in=False)
    jobs = owner_conn.execute(
        "SELECT queue_name, args FROM procrastinate_jobs WHERE task_name = 'hapex:send_account_email'").fetchall()
    [(queue, args)] = jobs
    email_id, client_id = owner_conn.execute("SELECT email_id, client_id FROM account_emails").fetchone()
    assert queue == "maintenance" and args == {"client_id": str(client_id), "email_id": str(email_id)}


def test_without_smtp_settings_an_account_email_is_kept_unsent_with_no_link(intake_app, agent_db, owner_conn):
    Visitor(intake_app).signup(new_email(), PASSWORD, verified=False, log_in=False)
    assert deliver_account_emails(agent_db, None) == {"no_smtp": 1}
    assert owner_conn.execute("SELECT status, token_hash FROM account_emails").fetchone() == ("no_smtp", None)


def test_a_failed_send_leaves_no_usable_link_and_is_retried(intake_app, agent_db, owner_conn, tmp_path):
    Visitor(intake_app).signup(new_email(), PASSWORD, verified=False, log_in=False)
    nowhere = SMTPSettings(host="127.0.0.1", port=free_port(), sender="x@localhost", starttls=False)
    assert deliver_account_emails(agent_db, nowhere) == {"pending": 1}
    assert owner_conn.execute("SELECT status, token_hash, attempts FROM account_emails").fetchone() == (
        "pending", None, 1)


def test_the_intake_role_can_neither_read_nor_set_a_link_hash(database):
    import psycopg

    with psycopg.connect(database.intake_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT token_hash FROM account_emails")
    with psycopg.connect(database.intake_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE account_emails SET token_hash = NULL")


def test_changing_the_address_needs_its_link_and_tells_the_old_one(intake_app, signed_up, mailbox, owner_conn):
    browser, old = signed_up
    new = new_email()
    wrong = browser.post("/account/email", {"new_email": new, "email_password": "not my password"},
                         token_from="/account")
    assert wrong.status_code == 400
    asked = browser.post("/account/email", {"new_email": new, "email_password": PASSWORD}, token_from="/account")
    assert asked.status_code == 303
    assert owner_conn.execute("SELECT email FROM users").fetchone() == (old,)  # nothing changes yet
    found = [m for m in mailbox.to(new) if m["Subject"] == "Confirm your new email address for Hapex"]
    path = urlsplit(LINK.search(found[-1].get_content()).group(0)).path  # type: ignore[union-attr]
    assert follow(Visitor(intake_app), path).status_code == 303
    assert owner_conn.execute("SELECT email, email_verified_at IS NOT NULL FROM users").fetchone() == (new, True)
    assert "The email address of your Hapex account was changed" in [m["Subject"] for m in mailbox.to(old)]
    assert Visitor(intake_app).login(new, PASSWORD).status_code == 303
    assert Visitor(intake_app).get(path).status_code == 410


def test_an_address_change_cannot_take_another_accounts_address(intake_app, signed_up, mailbox, owner_conn):
    browser, mine = signed_up
    theirs = new_email()
    Visitor(intake_app, address="192.0.2.200").signup(theirs, PASSWORD, business_name="Theirs")
    browser.post("/account/email", {"new_email": theirs, "email_password": PASSWORD}, token_from="/account")
    found = [m for m in mailbox.to(theirs) if m["Subject"] == "Confirm your new email address for Hapex"]
    path = urlsplit(LINK.search(found[-1].get_content()).group(0)).path  # type: ignore[union-attr]
    taken = follow(Visitor(intake_app), path)
    assert taken.status_code == 409
    assert owner_conn.execute("SELECT count(*) FROM users WHERE email = %s", [mine]).fetchone() == (1,)
