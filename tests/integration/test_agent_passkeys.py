"""Passkeys at the agent, with a software authenticator: registration, a passkey as second factor and
instead of the password, and an attacker's tries: a replayed challenge, another user's challenge or
credential, the wrong origin or RP id, a counter going backwards, another client's proof."""

from __future__ import annotations

import hashlib
import uuid

import psycopg
import pytest

from tests.agent_api import SERVICE, acting_for, bearer, build_agent_app
from tests.factories import make_client, make_session, make_user
from tests.passkey_authenticator import SoftAuthenticator, unb64url

ORIGIN = "https://app.hapex.example"
RP_ID = "app.hapex.example"


@pytest.fixture
def api(database, agent_db):
    return build_agent_app(database, agent_db, environ={"INTAKE_PUBLIC_URL": ORIGIN}).test_client()


class Person:
    """One user of one client, signed in (their session proves their client), with one passkey device."""

    def __init__(self, intake_db, client_id: uuid.UUID | None = None) -> None:
        self.client_id = client_id or make_client(intake_db)
        self.user_id = make_user(intake_db, self.client_id)
        self.session = make_session(intake_db, self.client_id, user_id=self.user_id)
        self.device = SoftAuthenticator(rp_id=RP_ID, origin=ORIGIN)

    @property
    def base(self) -> str:
        return f"/v1/clients/{self.client_id}/users/{self.user_id}/passkeys"

    def headers(self) -> dict[str, str]:
        return {**bearer(SERVICE), "Hapex-Client-Proof": f"session {self.session}"}

    def ids(self) -> dict[str, str]:
        return {"client_id": str(self.client_id), "user_id": str(self.user_id)}


def registration_options(api, person: Person, headers: dict[str, str] | None = None):
    return api.post(f"{person.base}/registration-options", json={"account_name": "owner@example.com"},
                    headers=headers or person.headers())


def register(api, person: Person, label: str = "Laptop") -> str:
    options = registration_options(api, person).get_json()["options"]
    answer = api.post(person.base, json={"credential": person.device.register(options), "label": label},
                      headers=person.headers())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["passkey_id"]


def second_factor_options(api, person: Person) -> dict:
    answer = api.post("/v1/passkeys/options", json=person.ids(), headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["options"]


def sign_in_options(api) -> dict:
    answer = api.post("/v1/passkeys/options", json={}, headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["options"]


def check(api, credential: dict, person: Person | None = None) -> dict:
    body = {"credential": credential, **(person.ids() if person else {})}
    answer = api.post("/v1/passkeys/check", json=body, headers=bearer(SERVICE))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


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


def test_a_passkey_proves_the_second_factor_once_per_challenge(api, intake_db, owner_conn):
    alice = Person(intake_db)
    register(api, alice)
    options = second_factor_options(api, alice)
    assertion = alice.device.assertion(options)
    assert check(api, assertion, alice) == {"accepted": True, **alice.ids()}
    assert owner_conn.execute("SELECT sign_count, last_used_at IS NOT NULL FROM user_passkeys").fetchone() == (1, True)
    # The same assertion again, and a fresh signature over the same (spent) challenge: both refused.
    assert check(api, assertion, alice)["accepted"] is False
    assert check(api, alice.device.assertion(options), alice)["accepted"] is False


def test_a_passkey_signs_in_instead_of_the_password_by_its_user_handle(api, intake_db):
    alice = Person(intake_db)
    register(api, alice)
    options = sign_in_options(api)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assertion = alice.device.assertion(options)
    assert check(api, assertion) == {"accepted": True, **alice.ids()}
    assert check(api, assertion)["accepted"] is False  # replayed
    # Without user verification (a touch but no PIN or biometric) it is not enough instead of a password.
    assert check(api, alice.device.assertion(sign_in_options(api), user_verified=False))["accepted"] is False


def test_a_challenge_of_another_user_or_purpose_is_refused(api, intake_db):
    alice, bob = Person(intake_db), Person(intake_db)
    register(api, alice)
    register(api, bob)
    alices = second_factor_options(api, alice)
    # Bob answers Alice's challenge with his own passkey, naming himself.
    assert check(api, bob.device.assertion(alices), bob)["accepted"] is False
    # A registration challenge does not sign anyone in, nor does a sign-in challenge serve as a second factor.
    registering = registration_options(api, alice).get_json()["options"]
    assert check(api, alice.device.assertion(registering), alice)["accepted"] is False
    assert check(api, alice.device.assertion(registering))["accepted"] is False
    assert check(api, alice.device.assertion(sign_in_options(api)), alice)["accepted"] is False
    # Alice's own challenge was not spent by Bob's try... but it is by her own use, once.
    assert check(api, alice.device.assertion(alices), alice)["accepted"] is True


def test_an_assertion_with_another_users_credential_is_refused(api, intake_db):
    alice = Person(intake_db)
    bob = Person(intake_db, client_id=alice.client_id)  # the same business, even
    mallory = Person(intake_db)
    register(api, alice)
    register(api, bob)
    register(api, mallory)
    # Bob's passkey on Alice's second-factor step.
    assert check(api, bob.device.assertion(second_factor_options(api, alice)), alice)["accepted"] is False
    # Without a password: Bob's (and another client's) passkey claiming to be Alice by her user handle.
    handle = alice.device.user_handle
    assert check(api, bob.device.assertion(sign_in_options(api), user_handle=handle))["accepted"] is False
    assert check(api, mallory.device.assertion(sign_in_options(api), user_handle=handle))["accepted"] is False
    # A made-up or missing user handle.
    assert check(api, alice.device.assertion(sign_in_options(api), user_handle=b"x" * 31))["accepted"] is False


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
    assert check(api, alice.device.assertion(second_factor_options(api, alice), **bend), alice)["accepted"] is False
    assert check(api, alice.device.assertion(sign_in_options(api), **bend))["accepted"] is False
    assert check(api, alice.device.assertion(second_factor_options(api, alice)), alice)["accepted"] is True


def test_a_signature_counter_going_backwards_is_refused(api, intake_db):
    alice = Person(intake_db)
    register(api, alice)

    def accepted(count: int) -> bool:
        options = second_factor_options(api, alice)
        return check(api, alice.device.assertion(options, sign_count=count), alice)["accepted"]

    assert accepted(7)
    # A cloned device still at 5, and one repeating 7: refused; the real one, moving on, is accepted.
    assert not accepted(5) and not accepted(7)
    assert accepted(8)


def test_a_forged_signature_or_an_expired_challenge_is_refused(api, intake_db, owner_conn):
    alice = Person(intake_db)
    register(api, alice)
    forged = alice.device.assertion(second_factor_options(api, alice))
    forged["response"]["signature"] = SoftAuthenticator(rp_id=RP_ID, origin=ORIGIN).assertion(
        {"challenge": "x"})["response"]["signature"]
    assert check(api, forged, alice)["accepted"] is False
    options = second_factor_options(api, alice)
    owner_conn.execute("UPDATE passkey_challenges SET expires_at = now() - interval '1 second'")
    assert check(api, alice.device.assertion(options), alice)["accepted"] is False
    options = sign_in_options(api)
    owner_conn.execute("UPDATE passkey_sign_in_challenges SET expires_at = now() - interval '1 second'")
    assert check(api, alice.device.assertion(options))["accepted"] is False


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
        assert check(api, credential)["accepted"] is False
        answer = api.post(alice.base, json={"credential": credential, "label": "x"}, headers=alice.headers())
        assert answer.status_code == 400 and answer.get_json()["error"] == "passkey_refused"
    half = api.post("/v1/passkeys/options", json={"client_id": str(alice.client_id)}, headers=bearer(SERVICE))
    assert half.status_code == 400 and half.get_json()["error"] == "validation_failed"
    none = api.post("/v1/passkeys/options", json=alice.ids(), headers=bearer(SERVICE))
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
