"""The agent acts for a client only with that client's own proof, tried as an attacker holding the intake.

The attacker has the service token, the intake's database role and a dump of the database (every
hash); what it lacks is a secret that only the client's live use produces: the session cookie a
browser sends or the URL of a webhook being called. Every route of the agent's url_map is tried.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import requests

from agent_service.auth import CLIENTLESS_ENDPOINTS, OPEN_ENDPOINTS, PROOF_HEADER, WEBHOOK_ENDPOINTS
from shared.db import PermissionDenied, tenant_transaction
from tests.agent_api import SERVICE, bearer, with_proof
from tests.factories import make_automation, make_client, make_session, make_user
from tests.integration.conftest import AGENT_URL, PASSWORD, Visitor, WSGIAdapter, build_intake_app, new_email
from tests.integration.test_automations_pages import (
    HOOK_URL,
    connect_digest,
    digest_form,
    followed,
    hook,
    press,
    save_digest,
)

REFUSED = {401: "client_proof_required", 403: "client_proof_refused"}


def tenant_rules(app) -> list[Any]:
    """Every rule the service token opens that is not the clientless OpenAPI document."""
    return [rule for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and rule.endpoint not in OPEN_ENDPOINTS
            and rule.endpoint not in CLIENTLESS_ENDPOINTS and not rule.rule.startswith("/v1/admin/")]


def calls_for(app, client_id: uuid.UUID, automation_id: uuid.UUID) -> list[tuple[str, str]]:
    """(method, path) of every tenant route for this client; automation ids are the given one, others made up."""
    calls = []
    for rule in tenant_rules(app):
        path = rule.rule.replace("<uuid:client_id>", str(client_id))
        path = path.replace("<uuid:automation_id>", str(automation_id))
        for name in rule.arguments - {"client_id", "automation_id"}:
            path = path.replace(f"<uuid:{name}>", str(uuid.uuid4()))
        calls += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return calls


def assert_refused(response, path: str) -> None:
    assert response.status_code in REFUSED, (path, response.status_code, response.json)
    assert response.json == {"error": REFUSED[response.status_code], "message": response.json["message"]}, path


@pytest.fixture
def victim(intake_db):
    """A client with a user, a live session, an expired one, an ended one and an enabled webhook automation."""
    client_id = make_client(intake_db, name="Victim Ltd")
    user_id = make_user(intake_db, client_id)
    live = make_session(intake_db, client_id, user_id=user_id)
    expired = make_session(intake_db, client_id, user_id=user_id)
    ended = make_session(intake_db, client_id, user_id=user_id)
    hook_secret = "h" * 43
    automation_id = make_automation(intake_db, client_id)
    return {"client_id": client_id, "user_id": user_id, "live": live, "expired": expired, "ended": ended,
            "hook": hook_secret, "automation_id": automation_id}


@pytest.fixture
def victim_state(victim, owner_conn):
    """The victim's expired session expired, its ended session ended, its automation an enabled webhook."""
    owner_conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE session_hash = %s",
                       [hashlib.sha256(victim["expired"].encode()).digest()])
    owner_conn.execute("DELETE FROM sessions WHERE session_hash = %s",
                       [hashlib.sha256(victim["ended"].encode()).digest()])
    owner_conn.execute(
        """UPDATE automations SET status = 'enabled', trigger = '{"kind": "webhook"}', webhook_secret_hash = %s
           WHERE automation_id = %s""", [hashlib.sha256(victim["hook"].encode()).digest(), victim["automation_id"]])
    return victim


def test_every_route_that_acts_for_a_client_names_it_in_its_url(agent_app):
    rules = tenant_rules(agent_app)
    assert len(rules) >= 10
    for rule in rules:
        assert "client_id" in rule.arguments, rule.rule  # else the proof check refuses it for everyone
    assert {"runs.run_now"} == WEBHOOK_ENDPOINTS


def test_the_clientless_routes_are_exactly_the_sign_ins_and_the_api_document(agent_app):
    """Each clientless endpoint exists (a stale name would hide nothing but mislead), and they are these."""
    endpoints = {rule.endpoint for rule in agent_app.url_map.iter_rules()}
    assert CLIENTLESS_ENDPOINTS <= endpoints
    assert {rule.rule for rule in agent_app.url_map.iter_rules() if rule.endpoint in CLIENTLESS_ENDPOINTS} == {
        "/v1/openapi.json", "/v1/sign-in", "/v1/sign-in/second-factor", "/v1/passkeys/options", "/v1/passkeys/check"}


def test_every_tenant_route_refuses_the_service_token_without_a_live_proof_of_that_client(
        api, agent_app, intake_db, owner_conn, victim_state):
    victim = victim_state
    other_client = make_client(intake_db, name="Attacker Ltd")
    other_session = make_session(intake_db, other_client)
    dump = owner_conn.execute("SELECT session_hash FROM sessions WHERE client_id = %s",
                              [victim["client_id"]]).fetchall()
    hook_hash = hashlib.sha256(victim["hook"].encode()).digest()
    live_hash = hashlib.sha256(victim["live"].encode()).digest()
    assert (live_hash,) in dump
    tries = {
        "no proof": bearer(SERVICE),
        "an empty proof": {**bearer(SERVICE), PROOF_HEADER: ""},
        "another client's live session": with_proof(bearer(SERVICE), "session", other_session),
        "its expired session": with_proof(bearer(SERVICE), "session", victim["expired"]),
        "its ended session": with_proof(bearer(SERVICE), "session", victim["ended"]),
        "a made-up secret": with_proof(bearer(SERVICE), "session", "m" * 43),
        "the dumped hash, hex": with_proof(bearer(SERVICE), "session", live_hash.hex()),
        "the dumped hash, base64url": with_proof(bearer(SERVICE), "session",
                                                 base64.urlsafe_b64encode(live_hash).decode().rstrip("=")),
        "the dumped webhook hash": with_proof(bearer(SERVICE), "webhook", hook_hash.hex()),
        "the live secret under an unknown kind": with_proof(bearer(SERVICE), "admin", victim["live"]),
        "the live secret with no kind": {**bearer(SERVICE), PROOF_HEADER: victim["live"]},
        "the live secret with a bad shape": with_proof(bearer(SERVICE), "session", victim["live"] + "\u00e9"),
    }
    calls = calls_for(agent_app, victim["client_id"], victim["automation_id"])
    for name, headers in tries.items():
        for method, path in calls:
            assert_refused(api.open(path, method=method, headers=headers, json={}), f"{name}: {method} {path}")
    # The victim's own live session on another client's routes is refused too: a proof is bound to its client.
    for method, path in calls_for(agent_app, other_client, uuid.uuid4()):
        assert_refused(api.open(path, method=method, json={},
                                headers=with_proof(bearer(SERVICE), "session", victim["live"])), path)
    # And the webhook's secret proves nothing but its own automation's webhook run.
    for method, path in calls:
        if not (method == "POST" and path.endswith(f"/automations/{victim['automation_id']}/runs")):
            assert_refused(api.open(path, method=method, json={},
                                    headers=with_proof(bearer(SERVICE), "webhook", victim["hook"])), path)
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_the_clients_live_session_opens_every_one_of_its_routes(api, agent_app, victim_state):
    headers = with_proof(bearer(SERVICE), "session", victim_state["live"])
    for method, path in calls_for(agent_app, victim_state["client_id"], victim_state["automation_id"]):
        assert api.open(path, method=method, headers=headers).status_code not in REFUSED, path


def test_a_webhook_secret_starts_only_a_webhook_run_of_its_own_enabled_automation(
        api, intake_db, owner_conn, victim_state):
    victim = victim_state
    client_id, automation_id = victim["client_id"], victim["automation_id"]
    proof = with_proof(bearer(SERVICE), "webhook", victim["hook"])
    path = f"/v1/clients/{client_id}/automations/{automation_id}/runs"
    assert_refused(api.post(path, headers=proof, json={"trigger": "manual"}), "a manual run")
    assert_refused(api.post(path, headers=proof), "a run with no body (manual)")
    sibling = make_automation(intake_db, client_id)
    assert_refused(api.post(f"/v1/clients/{client_id}/automations/{sibling}/runs", headers=proof,
                            json={"trigger": "webhook"}), "another automation")
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)

    started = api.post(path, headers=proof, json={"trigger": "webhook"})
    assert started.status_code == 202, started.json
    owner_conn.execute("UPDATE automations SET status = 'disabled' WHERE automation_id = %s", [automation_id])
    assert_refused(api.post(path, headers=proof, json={"trigger": "webhook"}), "a disabled automation")
    assert owner_conn.execute("SELECT trigger_kind FROM runs").fetchall() == [("webhook",)]


# --- the intake's database role cannot forge a proof ----------------------------------------


def test_the_intake_role_cannot_read_a_session_hash_of_any_client(intake_db, victim):
    for query in ("SELECT session_hash FROM sessions", "SELECT * FROM sessions",
                  "DELETE FROM sessions WHERE session_hash IS NOT NULL RETURNING session_hash"):
        with pytest.raises(PermissionDenied), tenant_transaction(intake_db, victim["client_id"]) as conn:
            conn.execute(query)
    with tenant_transaction(intake_db, victim["client_id"]) as conn:  # what signing out everywhere needs
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (3,)


def test_the_intake_role_cannot_write_a_session_row_of_its_choosing(intake_db, victim):
    known = hashlib.sha256(b"attacker's own secret").digest()
    with pytest.raises(PermissionDenied), tenant_transaction(intake_db, victim["client_id"]) as conn:
        conn.execute("INSERT INTO sessions (client_id, session_hash, user_id, expires_at) "
                     "VALUES (%s, %s, %s, now() + interval '10 years')",
                     [victim["client_id"], known, victim["user_id"]])
    with pytest.raises(PermissionDenied), tenant_transaction(intake_db, victim["client_id"]) as conn:
        conn.execute("UPDATE sessions SET expires_at = now() + interval '10 years'")


def test_a_session_the_agent_starts_cannot_outlive_the_longest_configurable_limits(agent_db, owner_conn, victim):
    session_hash = hashlib.sha256(b"a new session's secret").digest()
    with tenant_transaction(agent_db, victim["client_id"]) as conn:
        conn.execute("SELECT hapex_start_session(%s, %s, %s, %s, %s, 'x')",
                     [victim["client_id"], victim["user_id"], session_hash, timedelta(days=3650),
                      timedelta(days=3650)])
    expires_in = owner_conn.execute(
        "SELECT expires_at - now() <= interval '1 day' FROM sessions WHERE session_hash = %s",
        [session_hash]).fetchone()
    assert expires_in == (True,)


def test_the_intake_role_cannot_set_a_webhook_secret_without_that_clients_live_session(
        intake_db, owner_conn, victim_state):
    victim = victim_state
    attacker_client = make_client(intake_db, name="Attacker Ltd")
    attacker_session = make_session(intake_db, attacker_client)
    known = hashlib.sha256(b"attacker's webhook").digest()
    with pytest.raises(PermissionDenied), tenant_transaction(intake_db, victim["client_id"]) as conn:
        conn.execute("UPDATE automations SET webhook_secret_hash = %s", [known])
    with pytest.raises(PermissionDenied), tenant_transaction(intake_db, victim["client_id"]) as conn:
        conn.execute("INSERT INTO automations (client_id, name, status, trigger, webhook_secret_hash) "
                     "VALUES (%s, 'x', 'enabled', '{\"kind\": \"webhook\"}', %s)", [victim["client_id"], known])
    for session_secret in (attacker_session, victim["expired"], victim["ended"], "m" * 43,
                           hashlib.sha256(victim["live"].encode()).hexdigest()):
        with tenant_transaction(intake_db, victim["client_id"]) as conn:
            stored = conn.execute("SELECT hapex_set_webhook_secret(%s, %s, %s)",
                                  [session_secret, victim["automation_id"], known]).fetchone()
        assert stored == (False,), session_secret
    hashes = owner_conn.execute("SELECT webhook_secret_hash FROM automations WHERE webhook_secret_hash = %s",
                                [known]).fetchall()
    assert hashes == []
    with tenant_transaction(intake_db, victim["client_id"]) as conn:  # the client's own live session may
        assert conn.execute("SELECT hapex_set_webhook_secret(%s, %s, %s)",
                            [victim["live"], victim["automation_id"], known]).fetchone() == (True,)


def test_only_the_agent_role_may_ask_whether_a_secret_proves_a_client(intake_db, agent_db, victim):
    for query, params in (("SELECT hapex_session_proves_client(%s, %s)", [victim["client_id"], victim["live"]]),
                          ("SELECT hapex_webhook_proves_client(%s, %s, %s)",
                           [victim["client_id"], victim["automation_id"], "h" * 43])):
        with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
            conn.execute(query, params)
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_session_proves_client(%s, %s)",
                            [victim["client_id"], victim["live"]]).fetchone() == (True,)


def test_the_intake_role_cannot_start_a_session(intake_db, victim):
    """Only the agent starts one, after checking the password (tests/integration/test_sign_in_proof.py)."""
    for query in ("SELECT hapex_start_session(%s, %s, %s, interval '1 hour', interval '1 hour')",
                  "SELECT hapex_start_session(%s, %s, %s, interval '1 hour', interval '1 hour', 'x')"):
        with pytest.raises((PermissionDenied, psycopg.errors.InsufficientPrivilege)), intake_db.transaction() as conn:
            conn.execute(query, [victim["client_id"], victim["user_id"], b"x" * 32])


# --- the intake attaches the proof it was just handed ------------------------------------------


class RecordingAgent(WSGIAdapter):
    """The real agent, recording the proof header of each call; `before_call` runs first (to end sessions)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.proofs: list[str | None] = []
        self.before_call = lambda: None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.proofs.append(request.headers.get(PROOF_HEADER))
        self.before_call()
        return super().send(request, **kwargs)


@pytest.fixture
def recording(agent_service_app) -> RecordingAgent:
    return RecordingAgent(agent_service_app)


@pytest.fixture
def person(database, intake_db, recording) -> Visitor:
    visitor = Visitor(build_intake_app(database, intake_db, recording))
    assert visitor.signup(new_email(), PASSWORD).status_code == 303
    return visitor


def test_a_persons_agent_calls_carry_the_session_their_cookie_just_sent(person, recording, owner_conn):
    automation_id = save_digest(person, owner_conn)
    recording.proofs.clear()
    assert person.post(f"/automations/{automation_id}/run", token_from=f"/automations/{automation_id}"
                       ).status_code == 303
    assert recording.proofs == [f"session {person.session_cookie()}"]
    assert owner_conn.execute("SELECT trigger_kind FROM runs").fetchall() == [("manual",)]


def test_a_session_that_ends_before_the_agents_check_gets_sign_in_again_and_nothing_runs(
        person, recording, owner_conn):
    automation_id = save_digest(person, owner_conn)
    recording.before_call = lambda: owner_conn.execute("DELETE FROM sessions")  # signed out everywhere, just now
    response = person.post(f"/automations/{automation_id}/run", token_from=f"/automations/{automation_id}")
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert "Please sign in again" in person.get("/login").get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_webhook_call_carries_its_own_secret_and_no_session(person, recording, owner_conn):
    saved = followed(person, press(person, {**digest_form(person), "trigger_kind": "webhook"}, "save"))
    assert saved.status_code == 200
    secret = HOOK_URL.search(saved.get_data(as_text=True)).group(1)
    automation_id = owner_conn.execute("SELECT automation_id FROM automations").fetchone()[0]
    page = f"/automations/{automation_id}"
    connect_digest(owner_conn)
    assert person.post(f"{page}/enable", token_from=page).status_code == 303
    recording.proofs.clear()
    started = hook(person.app, f"/hooks/{secret}")  # another system: no cookie
    assert started.status_code == 202, started.json
    assert recording.proofs == [f"webhook {secret}"]


def test_calls_outside_a_request_carry_no_proof(agent_service_app):
    seen: list[str | None] = []

    class Spy(WSGIAdapter):
        def send(self, request, **kwargs):
            seen.append(request.headers.get(PROOF_HEADER))
            response = requests.Response()
            response.status_code, response.raw = 200, io.BytesIO(b'{"status": "ok"}')
            return response

    from intake.agent_client import AgentClient
    from tests.integration.conftest import intake_config

    client = AgentClient(intake_config(type("D", (), {"intake_dsn": "postgresql://unused"})()))
    client.session.mount(AGENT_URL, Spy(agent_service_app))
    client.check_alive()
    assert seen == [None]
