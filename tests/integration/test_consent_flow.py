"""The intake half of OAuth consent, as an attacker replaying or forging callbacks meets it."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from intake.connections.consent import (
    ConsentRefused,
    ProviderDeclined,
    accept_callback,
    pkce_verifier,
    start_consent,
)
from shared.catalog import get_provider, required_scopes
from shared.db import tenant_transaction
from shared.secret import Secret
from tests.factories import make_client
from tests.factories import make_session as start_session

KEY = Secret("k" * 16 + "e" * 16 + "y" * 16)
G = "https://www.googleapis.com/auth/"


def make_session(db, client_id) -> bytes:
    """A live session's hash (the factory writes it as the owner: no service role starts one unasked)."""
    return hashlib.sha256(start_session(db, client_id).encode()).digest()


@pytest.fixture
def client_and_session(intake_db):
    client = make_client(intake_db)
    return client, make_session(intake_db, client)


def start(db, client, session, provider_key="google", scopes=None):
    provider = get_provider(provider_key)
    if scopes is None:
        scopes = required_scopes(["gmail.search"]).get(provider_key, ())
    with tenant_transaction(db, client) as conn:
        return start_consent(
            conn,
            client_id=client,
            session_hash=session,
            provider=provider,
            client_id_at_provider="client-123",
            redirect_uri=f"https://hapex.test/connections/oauth/{provider_key}/callback",
            scopes=scopes,
            pkce_key=KEY,
        )


ISS = "https://accounts.google.com"


def callback(db, client, session, params, provider_key="google"):
    return accept_callback(
        db, client_id=client, provider=get_provider(provider_key), session_hash=session, params=params,
        pkce_key=KEY,
    )


def test_the_authorization_url_carries_pkce_s256_state_and_exactly_the_minimal_scopes(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session)
    url = urlsplit(started.authorization_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://accounts.google.com/o/oauth2/v2/auth"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == started.state
    assert query["scope"] == G + "gmail.readonly"
    assert query["access_type"] == "offline"
    assert query["client_id"] == "client-123"
    assert query["redirect_uri"] == "https://hapex.test/connections/oauth/google/callback"
    verifier = pkce_verifier(KEY, started.state)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == expected
    assert 43 <= len(verifier) <= 128


def test_a_valid_callback_yields_the_code_and_verifier_once(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session)
    accepted = callback(intake_db, client, session, {"state": started.state, "code": "4/code", "iss": ISS})
    assert accepted.code.reveal() == "4/code"
    assert accepted.code_verifier.reveal() == pkce_verifier(KEY, started.state)
    assert accepted.requested_scopes == (G + "gmail.readonly",)
    with pytest.raises(ConsentRefused) as replay:
        callback(intake_db, client, session, {"state": started.state, "code": "4/code", "iss": ISS})
    assert replay.value.reason == "unknown_state"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda s: {"code": "4/code"}, "missing_state"),
        (lambda s: {"state": s + "x", "code": "4/code"}, "unknown_state"),
        (lambda s: {"state": s[:-1], "code": "4/code"}, "unknown_state"),
        (lambda s: {"state": s, "code": "4/code", "iss": "https://evil.example"}, "wrong_issuer"),
        (lambda s: {"state": s, "iss": ISS}, "missing_code"),
        # RFC 9207: Google sends iss (the catalog says so), so a response without it is a mix-up too.
        (lambda s: {"state": s, "code": "4/code"}, "missing_issuer"),
        (lambda s: {"state": s, "code": "4/code", "iss": ""}, "wrong_issuer"),
    ],
)
def test_a_missing_altered_or_mixed_up_callback_is_refused(intake_db, client_and_session, tamper, reason):
    client, session = client_and_session
    started = start(intake_db, client, session)
    with pytest.raises(ConsentRefused) as refused:
        callback(intake_db, client, session, tamper(started.state))
    assert refused.value.reason == reason


def test_the_right_issuer_is_accepted(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session)
    accepted = callback(intake_db, client, session, {"state": started.state, "code": "c", "iss": "https://accounts.google.com"})
    assert accepted.provider == "google"


def test_a_code_meant_for_another_provider_is_refused(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session, provider_key="slack", scopes=("chat:write",))
    with pytest.raises(ConsentRefused) as refused:
        callback(intake_db, client, session, {"state": started.state, "code": "c"}, provider_key="google")
    assert refused.value.reason == "other_provider"


def test_a_state_from_another_session_is_refused(intake_db, client_and_session):
    client, session = client_and_session
    other_session = make_session(intake_db, client)
    started = start(intake_db, client, session)
    with pytest.raises(ConsentRefused) as refused:
        callback(intake_db, client, other_session, {"state": started.state, "code": "c"})
    assert refused.value.reason == "other_session"


def test_a_state_from_another_client_is_not_even_found(intake_db, client_and_session):
    client, session = client_and_session
    other = make_client(intake_db)
    other_session = make_session(intake_db, other)
    started = start(intake_db, client, session)
    with pytest.raises(ConsentRefused) as refused:
        callback(intake_db, other, other_session, {"state": started.state, "code": "c"})
    assert refused.value.reason == "unknown_state"


def test_an_expired_state_is_refused_and_consumed(intake_db, client_and_session, owner_conn):
    client, session = client_and_session
    started = start(intake_db, client, session)
    owner_conn.execute("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
    with pytest.raises(ConsentRefused) as refused:
        callback(intake_db, client, session, {"state": started.state, "code": "c"})
    assert refused.value.reason == "expired_state"
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


def test_a_provider_error_is_reported_as_declined(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session)
    with pytest.raises(ProviderDeclined):
        callback(intake_db, client, session, {"state": started.state, "error": "access_denied", "iss": ISS})


def test_no_state_or_verifier_is_stored_in_the_clear(intake_db, client_and_session, owner_conn):
    client, session = client_and_session
    started = start(intake_db, client, session)
    dump = str(owner_conn.execute("SELECT * FROM oauth_states").fetchall())
    assert started.state not in dump
    assert pkce_verifier(KEY, started.state) not in dump


def test_slack_scopes_are_joined_its_way_and_microsoft_asks_for_offline_access(intake_db, client_and_session):
    client, session = client_and_session
    slack = start(intake_db, client, session, provider_key="slack", scopes=("chat:write",))
    assert parse_qs(urlsplit(slack.authorization_url).query)["scope"] == ["chat:write"]
    ms = start(intake_db, client, session, provider_key="microsoft", scopes=("Calendars.Read", "Mail.Read"))
    assert parse_qs(urlsplit(ms.authorization_url).query)["scope"] == ["offline_access Calendars.Read Mail.Read"]


def test_a_provider_the_catalog_does_not_list_as_sending_iss_is_accepted_without_it(intake_db, client_and_session):
    client, session = client_and_session
    started = start(intake_db, client, session, provider_key="slack", scopes=("chat:write",))
    accepted = callback(intake_db, client, session, {"state": started.state, "code": "c"}, provider_key="slack")
    assert accepted.provider == "slack"
