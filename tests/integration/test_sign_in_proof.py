"""Only a person's own password (and code) starts their session, tried as an attacker holding the intake.

The attacker has the service token, the intake's database role and a dump of everything the database
holds (password hashes, session and ticket hashes). Before migration 0025 that was enough to start a
session, and so hold a proof, for any user: the intake read every hash and called hapex_start_session
with any ids. Now the agent checks the password and starts the session (agent_service/sign_in).
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import psycopg
import pytest

from shared.db import AlreadyExists, PermissionDenied, tenant_transaction
from shared.passwords import Passwords, hash_recovery_code
from tests.agent_api import SERVICE, bearer, with_proof
from tests.factories import make_client, make_session, make_user

PASSWORD = "the victim's own passphrase"  # noqa: S105 - a test's password
RECOVERY = "ABCD-EFGH-IJKL-MNOP"
SESSION = {"device": "Firefox on Linux", "idle_minutes": 30, "absolute_hours": 12}
DENIED = (PermissionDenied, psycopg.errors.InsufficientPrivilege)


@pytest.fixture
def victim(intake_db, owner_conn):
    """A client whose owner has a password and a second factor (with one recovery code), and a live session."""
    client_id = make_client(intake_db, name="Victim Ltd")
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    user_id = make_user(intake_db, client_id, email=email, password_hash=Passwords("test").hash(PASSWORD))
    owner_conn.execute("INSERT INTO user_totp (client_id, user_id, key_id, nonce, ciphertext, confirmed_at) "
                       "VALUES (%s, %s, 'k1:test', %s, %s, now())", [client_id, user_id, b"n" * 12, b"c" * 32])
    owner_conn.execute("INSERT INTO recovery_codes (client_id, user_id, code_hash) VALUES (%s, %s, %s)",
                       [client_id, user_id, hash_recovery_code(RECOVERY)])
    return {"client_id": client_id, "user_id": user_id, "email": email,
            "session": make_session(intake_db, client_id, user_id=user_id)}


def sign_in(api, email: str, password: str):
    return api.post("/v1/sign-in", headers=bearer(SERVICE), json={"email": email, "password": password, **SESSION})


def finish(api, client_id, ticket: str, code: str = RECOVERY):
    return api.post("/v1/sign-in/second-factor", headers=bearer(SERVICE),
                    json={"client_id": str(client_id), "ticket": ticket, "code": code, **SESSION})


def sessions_of(owner_conn, user_id) -> int:
    return owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s", [user_id]).fetchone()[0]


def test_the_intake_role_can_neither_start_a_session_nor_read_or_write_a_password_hash(intake_db, victim):
    client_id, user_id = victim["client_id"], victim["user_id"]
    attempts = [
        ("SELECT hapex_start_session(%s, %s, %s, interval '1 hour', interval '1 hour')",
         [client_id, user_id, b"x" * 32]),
        ("SELECT hapex_start_session(%s, %s, %s, interval '1 hour', interval '1 hour', 'x')",
         [client_id, user_id, b"x" * 32]),
        ("SELECT password_hash FROM users", []),
        ("SELECT * FROM hapex_find_login(%s)", [victim["email"]]),
        ("UPDATE users SET password_hash = %s", [Passwords("test").hash("attacker's password")]),
        ("UPDATE users SET email = 'attacker@example.com'", []),
        ("INSERT INTO users (client_id, email, password_hash) VALUES (%s, 'mole@example.com', %s)",
         [client_id, Passwords("test").hash("attacker's password")]),
        ("INSERT INTO sessions (client_id, session_hash, user_id, expires_at) VALUES (%s, %s, %s, now() + "
         "interval '1 hour')", [client_id, b"x" * 32, user_id]),
        ("INSERT INTO account_emails (client_id, user_id, kind, to_address) "
         "VALUES (%s, %s, 'verify_new_email', 'attacker@example.com')", [client_id, user_id]),
        ("SELECT * FROM sign_in_tickets", []),
        ("INSERT INTO sign_in_tickets (client_id, ticket_hash, user_id, expires_at) "
         "VALUES (%s, %s, %s, now() + interval '5 minutes')", [client_id, b"t" * 32, user_id]),
    ]
    for query, params in attempts:
        with pytest.raises(DENIED), tenant_transaction(intake_db, client_id) as conn:
            conn.execute(query, params)


def test_sign_up_cannot_add_a_user_to_an_existing_client(intake_db, owner_conn, victim):
    with pytest.raises((AlreadyExists, psycopg.errors.UniqueViolation)), \
            tenant_transaction(intake_db, victim["client_id"]) as conn:
        conn.execute("SELECT hapex_sign_up(%s, 'x', 'mole@example.com', %s)",
                     [victim["client_id"], Passwords("test").hash("attacker's password")])
    assert owner_conn.execute("SELECT count(*) FROM users WHERE client_id = %s",
                              [victim["client_id"]]).fetchone() == (1,)


def test_an_invitation_needs_a_live_session_of_an_owner_of_that_client_and_sets_no_known_password(
        intake_db, owner_conn, victim):
    attacker = make_client(intake_db, name="Attacker Ltd")
    member = make_user(intake_db, victim["client_id"])
    owner_conn.execute("UPDATE users SET role = 'member' WHERE user_id = %s", [member])
    for secret in (make_session(intake_db, attacker), make_session(intake_db, victim["client_id"], user_id=member),
                   hashlib.sha256(victim["session"].encode()).hexdigest(), "m" * 43):
        with tenant_transaction(intake_db, victim["client_id"]) as conn:
            rows = conn.execute("SELECT client_id FROM hapex_invite_member(%s, %s, 'owner')",
                                [secret, f"mole-{uuid.uuid4().hex[:6]}@example.com"]).fetchall()
        assert (victim["client_id"],) not in rows, secret  # an attacker's own session invites into its own client
    assert owner_conn.execute("SELECT count(*) FROM users WHERE client_id = %s",
                              [victim["client_id"]]).fetchone() == (2,)
    with tenant_transaction(intake_db, victim["client_id"]) as conn:
        rows = conn.execute("SELECT client_id FROM hapex_invite_member(%s, 'invited@example.com', 'member')",
                            [victim["session"]]).fetchall()
    assert rows == [(victim["client_id"],)]
    stored = owner_conn.execute("SELECT password_hash FROM users WHERE email = 'invited@example.com'").fetchone()[0]
    assert not Passwords("test").verify(stored, "") and not stored.startswith("$argon2")


def test_a_password_set_by_link_needs_the_links_own_token(intake_db, owner_conn, victim):
    token_hash = hashlib.sha256(b"the emailed token").digest()
    owner_conn.execute("INSERT INTO account_emails (client_id, user_id, kind, token_hash, expires_at, status) "
                       "VALUES (%s, %s, 'reset_password', %s, now() + interval '30 minutes', 'sent')",
                       [victim["client_id"], victim["user_id"], token_hash])
    known = Passwords("test").hash("attacker's password")
    for token in (token_hash.hex(), base64.urlsafe_b64encode(token_hash).decode().rstrip("="), "m" * 43):
        with intake_db.transaction() as conn:
            assert conn.execute("SELECT * FROM hapex_set_password_by_link(%s, %s)", [token, known]).fetchall() == []
    with intake_db.transaction() as conn:
        assert conn.execute("SELECT * FROM hapex_change_email_by_link(%s)", [token_hash.hex()]).fetchall() == []
    assert Passwords("test").verify(owner_conn.execute("SELECT password_hash FROM users WHERE user_id = %s",
                                                       [victim["user_id"]]).fetchone()[0], PASSWORD)


def test_with_the_service_token_a_wrong_password_starts_nothing_and_gets_no_ticket(api, owner_conn, victim):
    before = sessions_of(owner_conn, victim["user_id"])
    for email, password in ((victim["email"], "not the password"), ("nobody@example.com", PASSWORD)):
        answer = sign_in(api, email, password)
        assert answer.status_code == 200
        assert answer.json == {"outcome": "refused", "client_id": None, "user_id": None, "session": None,
                               "ticket": None}
    assert sessions_of(owner_conn, victim["user_id"]) == before
    assert owner_conn.execute("SELECT count(*) FROM sign_in_tickets").fetchone() == (0,)


def test_the_right_password_of_a_user_with_a_factor_gives_a_ticket_that_only_a_code_turns_into_a_session(
        api, owner_conn, victim):
    answer = sign_in(api, victim["email"], PASSWORD)
    assert answer.json["outcome"] == "second_factor" and answer.json["session"] is None
    ticket = answer.json["ticket"]
    (stored,) = owner_conn.execute("SELECT ticket_hash FROM sign_in_tickets").fetchone()
    assert bytes(stored) == hashlib.sha256(ticket.encode()).digest()
    before = sessions_of(owner_conn, victim["user_id"])
    assert finish(api, victim["client_id"], ticket, code="ZZZZ-ZZZZ-ZZZZ-ZZZZ").json["outcome"] == "refused"
    signed_in = finish(api, victim["client_id"], ticket)
    assert signed_in.json["outcome"] == "signed_in"
    assert sessions_of(owner_conn, victim["user_id"]) == before + 1
    proved = api.get(f"/v1/clients/{victim['client_id']}/connections",
                     headers=with_proof(bearer(SERVICE), "session", signed_in.json["session"]))
    assert proved.status_code == 200
    assert finish(api, victim["client_id"], ticket).json["outcome"] == "refused"  # a ticket is good once


def test_second_factor_sign_in_refuses_forged_dumped_and_other_clients_tickets(api, intake_db, owner_conn, victim):
    real = sign_in(api, victim["email"], PASSWORD).json["ticket"]
    dumped = owner_conn.execute("SELECT ticket_hash FROM sign_in_tickets").fetchone()[0]
    other_client = make_client(intake_db, name="Attacker Ltd")
    before = sessions_of(owner_conn, victim["user_id"])
    for client_id, ticket in ((victim["client_id"], "t" * 43),
                              (victim["client_id"], base64.urlsafe_b64encode(bytes(dumped)).decode().rstrip("=")),
                              (other_client, real)):
        answer = finish(api, client_id, ticket)
        assert answer.status_code == 200 and answer.json["outcome"] == "refused", ticket
    for malformed in (bytes(dumped).hex(), ""):
        assert finish(api, victim["client_id"], malformed).status_code == 400
    assert sessions_of(owner_conn, victim["user_id"]) == before
    assert api.post("/v1/second-factor/check", headers=bearer(SERVICE),
                    json={"client_id": str(victim["client_id"]), "user_id": str(victim["user_id"]),
                          "code": "123456"}).status_code == 404  # the old clientless check is gone


def test_a_ticket_takes_a_few_codes_and_then_the_password_again(api, owner_conn, victim):
    ticket = sign_in(api, victim["email"], PASSWORD).json["ticket"]
    for _ in range(5):
        assert finish(api, victim["client_id"], ticket, code="ZZZZ-ZZZZ-ZZZZ-ZZZZ").json["outcome"] == "refused"
    assert finish(api, victim["client_id"], ticket).json["outcome"] == "refused"  # even the right code now


def test_an_expired_ticket_is_refused(api, owner_conn, victim):
    ticket = sign_in(api, victim["email"], PASSWORD).json["ticket"]
    owner_conn.execute("UPDATE sign_in_tickets SET expires_at = now() - interval '1 second'")
    assert finish(api, victim["client_id"], ticket).json["outcome"] == "refused"


def test_password_routes_refuse_the_service_token_without_that_clients_live_session(api, intake_db, victim):
    attacker_session = make_session(intake_db, make_client(intake_db, name="Attacker Ltd"))
    base = f"/v1/clients/{victim['client_id']}/users/{victim['user_id']}"
    calls = [("POST", f"{base}/password/check", {"password": PASSWORD}),
             ("PUT", f"{base}/password",
              {"current_password": PASSWORD, "new_password": "attacker's new one", **SESSION}),
             ("POST", f"{base}/email", {"password": PASSWORD, "new_email": "attacker@example.com",
                                        "link_base": "https://intake.test/email-link/"}),
             ("POST", f"{base}/totp/check", {"code": "123456"})]
    for method, path, body in calls:
        assert api.open(path, method=method, headers=bearer(SERVICE), json=body).status_code == 401
        refused = api.open(path, method=method, headers=with_proof(bearer(SERVICE), "session", attacker_session),
                           json=body)
        assert refused.status_code == 403 and refused.json["error"] == "client_proof_refused", path


def test_a_stolen_dump_makes_no_session_proof_and_no_ticket(api, owner_conn, victim):
    ticket = sign_in(api, victim["email"], PASSWORD).json["ticket"]
    assert ticket
    dump = []
    for table in ("sessions", "sign_in_tickets", "users", "account_emails", "recovery_codes"):
        dump += [value for row in owner_conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - fixed names
                 for value in row if isinstance(value, (bytes, memoryview, str))]
    candidates = set()
    for value in dump:
        raw = bytes(value) if not isinstance(value, str) else value.encode()
        candidates |= {raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.decode("latin-1")}
    for candidate in candidates:
        if not candidate or len(candidate) > 256 or not candidate.isprintable():
            continue
        proof = api.get(f"/v1/clients/{victim['client_id']}/connections",
                        headers=with_proof(bearer(SERVICE), "session", candidate))
        assert proof.status_code in (403,), candidate
        if len(candidate) == 43:
            assert finish(api, victim["client_id"], candidate).json["outcome"] == "refused"
