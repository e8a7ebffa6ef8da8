"""Passkeys at the agent, with a software authenticator: registration, a passkey as the second step
(with the pending sign-in's ticket the password got) and instead of the password, each starting its
session here; a fresh proof for a signed-in user; and an attacker's tries: a replayed challenge,
another user's challenge, credential or ticket, a spent or expired ticket, the wrong origin or RP id,
a counter going backwards, another client's proof, the intake's role starting a session itself."""

from __future__ import annotations

import hashlib
import uuid

import psycopg
import pytest

from shared.passwords import Passwords
from tests.agent_api import SERVICE, acting_for, bearer, build_agent_app, with_proof
from tests.factories import make_client, make_session, make_user
from tests.passkey_authenticator import SoftAuthenticator, unb64url

ORIGIN = "https://app.hapex.example"
RP_ID = "app.hapex.example"
PASSWORD = "a passkey user's passphrase"  # noqa: S105 - a test's password
SESSION = {"device": "Firefox on Linux", "idle_minutes": 30, "absolute_hours": 12}


@pytest.fixture
def api(database, agent_db):
    return build_agent_app(database, agent_db, environ={"INTAKE_PUBLIC_URL": ORIGIN}).test_client()


class Person:
    """One user of one client with a password, signed in (their session proves their client), with one
    passkey device."""

    def __init__(self, intake_db, client_id: uuid.UUID | None = None) -> None:
        self.client_id = client_id or make_client(intake_db)
        self.email = f"passkeys-{uuid.uuid4().hex[:8]}@example.com"
        self.user_id = make_user(intake_db, self.client_id, email=self.email,
                                 password_hash=Passwords("test").hash(PASSWORD))
        self.session = make_session(intake_db, self.client_id, user_id=self.user_id)
        self.device = SoftAuthenticator(rp_id=RP_ID, origin=ORIGIN)

    @property
    def base(self) -> str:
        return f"/v1/clients/{self.client_id}/users/{self.user_id}/passkeys"

    def headers(self) -> dict[str, str]:
        return {**bearer(SERVICE), "Hapex-Client-Proof": f"session {self.session}"}

    def ids(self) -> dict[str, str]:
        return {"client_id": str(self.client_id), "user_id": str(self.user_id)}

    def ticket(self, api) -> str:
        """The password's pending sign-in (the user has a passkey, so a second step is owed)."""
        answer = api.post("/v1/sign-in", headers=bearer(SERVICE),
                          json={"email": self.email, "password": PASSWORD, **SESSION}).get_json()
        assert answer["outcome"] == "second_factor" and answer["session"] is None, answer
        return str(answer["ticket"])


def registration_options(api, person: Person, headers: dict[str, str] | None = None):
    return api.post(f"{person.base}/registration-options", json={"account_name": "owner@example.com"},
                    headers=headers or person.headers())


def register(api, person: Person, label: str = "Laptop") -> str:
    options = registration_options(api, person).get_json()["options"]
    answer = api.post(person.base, json={"credential": person.device.register(options), "label": label},
                      headers=person.headers())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["passkey_id"]


def second_factor_options(api, person: Person, ticket: str) -> dict:
    answer = api.post("/v1/passkeys/options", json={"client_id": str(person.client_id), "ticket": ticket},
                      headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["options"]


def sign_in_options(api) -> dict:
    answer = api.post("/v1/passkeys/options", json={}, headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["options"]


def check(api, credential: dict, person: Person | None = None, ticket: str | None = None) -> dict:
    """The agent's answer: `signed_in` with the session it started, or `refused`."""
    pending = {"client_id": str(person.client_id), "ticket": ticket} if person is not None else {}
    answer = api.post("/v1/passkeys/check", json={"credential": credential, **pending, **SESSION},
                      headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["outcome"] == "signed_in") == (body["session"] is not None)
    return body


def signed_in(answer: dict) -> bool:
    return answer["outcome"] == "signed_in"


def second_step(api, person: Person, device: SoftAuthenticator | None = None, **bend) -> dict:
    """The password, then a passkey (the person's own, or another device) as the second step."""
    ticket = person.ticket(api)
    return check(api, (device or person.device).assertion(second_factor_options(api, person, ticket), **bend),
                 person, ticket)


def sessions_of(owner_conn, person: Person) -> int:
    return owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s", [person.user_id]).fetchone()[0]


def proves_its_client(api, person: Person, session: str) -> bool:
    answer = api.get(f"/v1/clients/{person.client_id}/connections",
                     headers=with_proof(bearer(SERVICE), "session", session))
    return answer.status_code == 200


def test_a_registered_passkey_keeps_only_its_public_key_and_counter(api, intake_db, owner_conn):
    alice = Person(intake_db)
    options = registration_options(api, alice).get_json()["options"]
    assert options["rp"]["id"] == RP_ID
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    passkey_id = register(api, alice)
    row = owner_conn.execute("SELECT passkey_id, user_id, credential_id, public_key, sign_count, transports, label "
                             "FROM user_passkeys").fetchone()
    assert row[0] == uuid.UUID(passkey_id) and row[1] == alice.user_id
    assert bytes(row[2]) == alice.device.credential_id and bytes(row[3]) == alice.device.cose_public_key()
    assert row[4:] == (0, ["internal"], "Laptop")
    # Only a hash of each challenge is kept: the one just used is gone, the first one asked for is not it.
    stored = [bytes(r[0]) for r in owner_conn.execute("SELECT challenge_hash FROM passkey_challenges")]
    assert stored == [hashlib.sha256(unb64url(options["challenge"])).digest()]
    # A second registration of the same credential in the same business is refused.
    options = registration_options(api, alice).get_json()["options"]
    assert {c["id"] for c in options["excludeCredentials"]} == {alice.device.register(options)["id"]}
    again = api.post(alice.base, json={"credential": alice.device.register(options), "label": "Again"},
                     headers=alice.headers())
    assert again.status_code == 409 and again.get_json()["error"] == "passkey_already_registered"


def test_a_passkey_as_the_second_step_starts_the_session_once_per_ticket_and_challenge(api, intake_db, owner_conn):
    alice = Person(intake_db)
    register(api, alice)
    ticket = alice.ticket(api)
    options = second_factor_options(api, alice, ticket)
    assertion = alice.device.assertion(options)
    before = sessions_of(owner_conn, alice)
    answer = check(api, assertion, alice, ticket)
    assert signed_in(answer) and {k: answer[k] for k in ("client_id", "user_id")} == alice.ids()
    assert answer["ticket"] is None
    assert sessions_of(owner_conn, alice) == before + 1 and proves_its_client(api, alice, answer["session"])
    # Only the session's hash is kept, and the ticket is spent with it.
    stored = owner_conn.execute("SELECT 1 FROM sessions WHERE session_hash = %s",
                                [hashlib.sha256(answer["session"].encode()).digest()]).fetchone()
    assert stored is not None
    assert owner_conn.execute("SELECT count(*) FROM sign_in_tickets").fetchone()[0] == 0
    assert owner_conn.execute("SELECT sign_count, last_used_at IS NOT NULL FROM user_passkeys").fetchone() == (1, True)
    # The same assertion again, and a fresh signature over the same (spent) challenge, with the spent ticket: refused.
    assert not signed_in(check(api, assertion, alice, ticket))
    assert not signed_in(check(api, alice.device.assertion(options), alice, ticket))
    # A spent ticket gets no new options either, and a fresh challenge with it is refused.
    assert api.post("/v1/passkeys/options", json={"client_id": str(alice.client_id), "ticket": ticket},
                    headers=bearer(SERVICE)).status_code == 404
    assert sessions_of(owner_conn, alice) == before + 1


def test_a_passkey_as_the_second_step_needs_a_live_ticket_of_its_own_user(api, intake_db, owner_conn):
    alice = Person(intake_db)
    bob = Person(intake_db, client_id=alice.client_id)  # the same business, even
    register(api, alice)
    register(api, bob)
    before = sessions_of(owner_conn, alice)
    alices_ticket = alice.ticket(api)
    alices_options = second_factor_options(api, alice, alices_ticket)
    # No ticket at all: naming her client (400: both or neither), or naming no one (a second step's challenge
    # is no passwordless sign-in's).
    no_ticket = api.post("/v1/passkeys/check", headers=bearer(SERVICE),
                         json={"credential": alice.device.assertion(alices_options),
                               "client_id": str(alice.client_id), **SESSION})
    assert no_ticket.status_code == 400 and no_ticket.get_json()["error"] == "validation_failed"
    assert not signed_in(check(api, alice.device.assertion(alices_options)))
    alices_options = second_factor_options(api, alice, alices_ticket)
    # A forged ticket, and a ticket of another client.
    assert not signed_in(check(api, alice.device.assertion(alices_options), alice, "t" * 43))
    other = Person(intake_db)
    register(api, other)
    assert not signed_in(check(api, alice.device.assertion(alices_options), other, alices_ticket))
    # Bob's own ticket with Alice's passkey (on Bob's challenge or Alice's): his ticket proves only Bob.
    bobs_ticket = bob.ticket(api)
    bobs_options = second_factor_options(api, bob, bobs_ticket)
    assert not signed_in(check(api, alice.device.assertion(bobs_options), bob, bobs_ticket))
    assert not signed_in(check(api, alice.device.assertion(alices_options), bob, bobs_ticket))
    # Alice's ticket with Bob's passkey (on Alice's challenge or Bob's).
    assert not signed_in(check(api, bob.device.assertion(alices_options), alice, alices_ticket))
    assert not signed_in(check(api, bob.device.assertion(bobs_options), alice, alices_ticket))
    assert sessions_of(owner_conn, alice) == before and sessions_of(owner_conn, bob) == 1
    # An expired ticket, even with Alice's own passkey on a fresh challenge of hers.
    ticket = alice.ticket(api)
    options = second_factor_options(api, alice, ticket)
    owner_conn.execute("UPDATE sign_in_tickets SET expires_at = now() - interval '1 second'")
    assert not signed_in(check(api, alice.device.assertion(options), alice, ticket))
    assert sessions_of(owner_conn, alice) == before
    # Her own live ticket and passkey: signed in.
    assert signed_in(second_step(api, alice))


def test_a_ticket_takes_a_few_passkey_tries_and_then_the_password_again(api, intake_db, owner_conn):
    alice, mallory = Person(intake_db), Person(intake_db)
    register(api, alice)
    register(api, mallory)
    ticket = alice.ticket(api)
    for _ in range(5):
        assert not signed_in(check(api, mallory.device.assertion(second_factor_options(api, alice, ticket)),
                                   alice, ticket))
    # Five tries spent it: no options for it any more (the password again), and no session was started.
    assert api.post("/v1/passkeys/options", json={"client_id": str(alice.client_id), "ticket": ticket},
                    headers=bearer(SERVICE)).status_code == 404
    assert sessions_of(owner_conn, alice) == 1  # her make_session only


def test_a_passkey_signs_in_instead_of_the_password_by_its_user_handle(api, intake_db, owner_conn):
    alice = Person(intake_db)
    register(api, alice)
    options = sign_in_options(api)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assertion = alice.device.assertion(options)
    before = sessions_of(owner_conn, alice)
    answer = check(api, assertion)
    assert signed_in(answer) and {k: answer[k] for k in ("client_id", "user_id")} == alice.ids()
    assert sessions_of(owner_conn, alice) == before + 1 and proves_its_client(api, alice, answer["session"])
    assert not signed_in(check(api, assertion))  # replayed
    # Without user verification (a touch but no PIN or biometric) it is not enough instead of a password.
    assert not signed_in(check(api, alice.device.assertion(sign_in_options(api), user_verified=False)))
    assert sessions_of(owner_conn, alice) == before + 1


def test_a_challenge_of_another_user_or_purpose_is_refused(api, intake_db):
    alice, bob = Person(intake_db), Person(intake_db)
    register(api, alice)
    register(api, bob)
    alices_ticket = alice.ticket(api)
    alices = second_factor_options(api, alice, alices_ticket)
    # Bob answers Alice's challenge with his own passkey and his own ticket.
    assert not signed_in(check(api, bob.device.assertion(alices), bob, bob.ticket(api)))
    # A registration challenge does not sign anyone in, nor does a sign-in challenge serve as a second step.
    registering = registration_options(api, alice).get_json()["options"]
    assert not signed_in(check(api, alice.device.assertion(registering), alice, alice.ticket(api)))
    assert not signed_in(check(api, alice.device.assertion(registering)))
    assert not signed_in(check(api, alice.device.assertion(sign_in_options(api)), alice, alice.ticket(api)))
    # Alice's own challenge was not spent by Bob's try... but it is by her own use, once.
    assert signed_in(check(api, alice.device.assertion(alices), alice, alices_ticket))


def test_passwordless_sign_in_starts_a_session_only_for_the_credentials_own_user(api, intake_db, owner_conn):
    alice = Person(intake_db)
    bob = Person(intake_db, client_id=alice.client_id)
    mallory = Person(intake_db)
    for person in (alice, bob, mallory):
        register(api, person)
    # Bob's (and another client's) passkey claiming to be Alice by her user handle.
    handle = alice.device.user_handle
    assert not signed_in(check(api, bob.device.assertion(sign_in_options(api), user_handle=handle)))
    assert not signed_in(check(api, mallory.device.assertion(sign_in_options(api), user_handle=handle)))
    # A made-up or missing user handle.
    assert not signed_in(check(api, alice.device.assertion(sign_in_options(api), user_handle=b"x" * 31)))
    assert sessions_of(owner_conn, alice) == 1
    # Mallory's own passkey signs in Mallory, in her client, and that session proves no other client.
    answer = check(api, mallory.device.assertion(sign_in_options(api)))
    assert signed_in(answer) and answer["user_id"] == str(mallory.user_id)
    assert not proves_its_client(api, alice, answer["session"])
    assert sessions_of(owner_conn, alice) == 1


def test_a_fresh_proof_needs_the_users_own_session_and_passkey_and_starts_nothing(api, intake_db, owner_conn):
    alice, mallory = Person(intake_db), Person(intake_db)
    register(api, alice)
    register(api, mallory)
    before = owner_conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    options = api.post(f"{alice.base}/proof-options", headers=alice.headers())
    assert options.status_code == 200
    options = options.get_json()["options"]
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [alice.device.credential_id]
    for headers in (mallory.headers(), bearer(SERVICE)):
        assert api.post(f"{alice.base}/proof-options", headers=headers).status_code in (401, 403)
        assert api.post(f"{alice.base}/proof", headers=headers,
                        json={"credential": alice.device.assertion(options)}).status_code in (401, 403)
    # Mallory's passkey on Alice's challenge (which it spends), then Alice's own on a new one (once).
    assert api.post(f"{alice.base}/proof", headers=alice.headers(),
                    json={"credential": mallory.device.assertion(options)}).get_json() == {"accepted": False}
    options = api.post(f"{alice.base}/proof-options", headers=alice.headers()).get_json()["options"]
    assertion = alice.device.assertion(options)
    assert api.post(f"{alice.base}/proof", headers=alice.headers(),
                    json={"credential": assertion}).get_json() == {"accepted": True}
    assert api.post(f"{alice.base}/proof", headers=alice.headers(),
                    json={"credential": assertion}).get_json() == {"accepted": False}
    # A proof's challenge does not sign anyone in without a password either.
    options = api.post(f"{alice.base}/proof-options", headers=alice.headers()).get_json()["options"]
    assert not signed_in(check(api, alice.device.assertion(options)))
    assert owner_conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == before


@pytest.mark.parametrize("bend", [{"origin": "https://evil.example"}, {"origin": "http://app.hapex.example"},
                                  {"rp_id": "evil.example"}, {"rp_id": "hapex.example"}])
def test_the_wrong_origin_or_rp_id_is_refused(api, intake_db, owner_conn, bend):
    alice = Person(intake_db)
    options = registration_options(api, alice).get_json()["options"]
    refused = api.post(alice.base, json={"credential": alice.device.register(options, **bend), "label": "Phone"},
                       headers=alice.headers())
    assert refused.status_code == 400 and refused.get_json()["error"] == "passkey_refused"
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone()[0] == 0
    register(api, alice)
    assert not signed_in(second_step(api, alice, **bend))
    assert not signed_in(check(api, alice.device.assertion(sign_in_options(api), **bend)))
    assert signed_in(second_step(api, alice))


def test_a_signature_counter_going_backwards_is_refused(api, intake_db):
    alice = Person(intake_db)
    register(api, alice)

    def accepted(count: int) -> bool:
        return signed_in(second_step(api, alice, sign_count=count))

    assert accepted(7)
    # A cloned device still at 5, and one repeating 7: refused; the real one, moving on, is accepted.
    assert not accepted(5) and not accepted(7)
    assert accepted(8)


def test_a_forged_signature_or_an_expired_challenge_is_refused(api, intake_db, owner_conn):
    alice = Person(intake_db)
    register(api, alice)
    ticket = alice.ticket(api)
    forged = alice.device.assertion(second_factor_options(api, alice, ticket))
    forged["response"]["signature"] = SoftAuthenticator(rp_id=RP_ID, origin=ORIGIN).assertion(
        {"challenge": "x"})["response"]["signature"]
    assert not signed_in(check(api, forged, alice, ticket))
    ticket = alice.ticket(api)
    options = second_factor_options(api, alice, ticket)
    owner_conn.execute("UPDATE passkey_challenges SET expires_at = now() - interval '1 second'")
    assert not signed_in(check(api, alice.device.assertion(options), alice, ticket))
    options = sign_in_options(api)
    owner_conn.execute("UPDATE passkey_sign_in_challenges SET expires_at = now() - interval '1 second'")
    assert not signed_in(check(api, alice.device.assertion(options)))
    assert sessions_of(owner_conn, alice) == 1


def test_registering_and_removing_need_the_clients_own_proof(api, intake_db, owner_conn):
    alice, mallory = Person(intake_db), Person(intake_db)
    passkey_id = register(api, alice)
    for headers in (mallory.headers(), acting_for(intake_db, mallory.client_id)):
        assert registration_options(api, alice, headers).status_code == 403
        options = registration_options(api, mallory).get_json()["options"]
        assert api.post(alice.base, json={"credential": alice.device.register(options), "label": "x"},
                        headers=headers).get_json()["error"] == "client_proof_refused"
        assert api.delete(f"{alice.base}/{passkey_id}", headers=headers).status_code == 403
    assert api.delete(f"{alice.base}/{passkey_id}", headers=bearer(SERVICE)).status_code == 401
    # Mallory's registration challenge does not register a passkey for Alice even with Alice's proof.
    options = registration_options(api, mallory).get_json()["options"]
    assert api.post(alice.base, json={"credential": alice.device.register(options), "label": "x"},
                    headers=alice.headers()).status_code == 400
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone()[0] == 1
    removed = api.delete(f"{alice.base}/{passkey_id}", headers=alice.headers())
    assert removed.get_json() == {"removed": True}
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone()[0] == 0


def test_malformed_answers_are_refused_in_the_error_shape(api, intake_db):
    alice = Person(intake_db)
    for credential in ({}, {"id": "x"}, {"id": "AA", "rawId": "AA", "type": "public-key", "response": "x"},
                       {"id": "AA", "rawId": "AA", "type": "public-key",
                        "response": {"clientDataJSON": "!!", "attestationObject": "AA"}}):
        assert not signed_in(check(api, credential))
        answer = api.post(alice.base, json={"credential": credential, "label": "x"}, headers=alice.headers())
        assert answer.status_code == 400 and answer.get_json()["error"] == "passkey_refused"
    for half in ({"client_id": str(alice.client_id)}, {"ticket": "t" * 43}, alice.ids(),
                 {"client_id": str(alice.client_id), "ticket": "short"}):
        answer = api.post("/v1/passkeys/options", json=half, headers=bearer(SERVICE))
        assert answer.status_code == 400 and answer.get_json()["error"] == "validation_failed", half
    none = api.post("/v1/passkeys/options", json={"client_id": str(alice.client_id), "ticket": "t" * 43},
                    headers=bearer(SERVICE))
    assert none.status_code == 404 and none.get_json()["error"] == "no_passkeys"


@pytest.mark.parametrize("length", [8, 15, 1024, 1500], ids=lambda n: f"{n}-byte-id")
def test_a_verified_passkey_whose_credential_id_no_browser_may_send_is_refused_not_a_server_error(
        api, intake_db, owner_conn, length):
    """WebAuthn bounds a credential id to 16..1023 bytes (the table says so too); an authenticator that
    signs for a longer or shorter one is refused in the error shape, with nothing stored."""
    alice = Person(intake_db)
    alice.device.credential_id = bytes(length)
    options = registration_options(api, alice).get_json()["options"]
    answer = api.post(alice.base, json={"credential": alice.device.register(options), "label": "Odd key"},
                      headers=alice.headers())
    assert answer.status_code == 400 and answer.get_json()["error"] == "passkey_refused"
    assert owner_conn.execute("SELECT count(*) FROM user_passkeys").fetchone() == (0,)


def test_without_a_configured_origin_passkeys_are_unavailable(database, agent_db, intake_db):
    api = build_agent_app(database, agent_db).test_client()
    alice = Person(intake_db)
    answer = registration_options(api, alice)
    assert answer.status_code == 409 and answer.get_json()["error"] == "passkeys_unavailable"
    assert api.post("/v1/passkeys/options", json={}, headers=bearer(SERVICE)).status_code == 409


def test_neither_service_role_touches_sign_in_challenges_but_through_its_functions(database):
    for dsn in (database.intake_dsn, database.agent_dsn):
        with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM passkey_sign_in_challenges")
    with psycopg.connect(database.intake_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT public_key FROM user_passkeys")


def test_the_intake_role_cannot_start_a_session_nor_read_what_a_passkey_signs_with(database, intake_db):
    alice = Person(intake_db)
    with psycopg.connect(database.intake_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT hapex_start_session(%s, %s, %s, interval '1 hour', interval '1 hour', 'x')",
                     [alice.client_id, alice.user_id, b"x" * 32])
    for query in ("SELECT * FROM sign_in_tickets", "SELECT * FROM passkey_challenges"):
        with psycopg.connect(database.intake_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(query)
