"""Connecting and disconnecting providers from the intake, with the real agent behind it.

Only the providers' own endpoints are stood in for (`responses`); the intake, the agent,
the database and the session are real. Tests look at what a client or an attacker sees:
the consent URL, the pages, the status codes, the rows, the logs, the calls to providers.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import responses
from psycopg import sql
from psycopg.types.json import Jsonb

from intake.connections.consent import pkce_challenge, pkce_verifier
from intake.connections.views import pkce_key
from shared.catalog import CAPABILITIES, PROVIDERS, Access, AuthKind
from shared.config import Environment, resolve_catalog
from shared.db import tenant_transaction
from shared.structured_logging import JSONFormatter
from tests.factories import client_of, make_client, make_connection, make_user
from tests.integration.conftest import PASSWORD, Visitor, build_intake_app, new_email

G = "https://www.googleapis.com/auth/"
PUBLIC_URL = "https://intake.test"
GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
SLACK_TOKEN_URL = "https://slack.com/api/oauth.v2.access"
TOKEN_URLS = {p.token_url for p in PROVIDERS.values() if p.token_url}
CONFIGURED = ("google", "slack", "microsoft")
CLIENT_IDS = {key: f"hapex-{key}-client-id" for key in CONFIGURED}

READ_ONLY_OAUTH_CAPABILITIES = sorted(
    key for key, c in CAPABILITIES.items()
    if c.access is Access.READ and PROVIDERS[c.provider].auth_kind is AuthKind.OAUTH2
)


@pytest.fixture
def configured() -> tuple[str, ...]:
    """The providers Hapex is registered with on this deployment."""
    return CONFIGURED


@pytest.fixture
def provider_clients(configured) -> dict[str, str]:
    """Hapex's client id and secret at each configured provider; no endpoint overrides."""
    environ = {}
    for key in configured:
        environ[f"HAPEX_{key.upper()}_CLIENT_ID"] = CLIENT_IDS[key]
        environ[f"HAPEX_{key.upper()}_CLIENT_SECRET"] = f"{key}-client-secret-{secrets.token_hex(8)}"
    return environ


@pytest.fixture
def agent_environ(provider_clients) -> dict[str, str]:
    """The agent as deployed with those OAuth clients."""
    return provider_clients


@pytest.fixture
def app(database, intake_db, agent_transport, provider_clients):
    """The intake as deployed with those client ids (it reads no secret of theirs)."""
    providers = resolve_catalog(Environment(provider_clients))
    return build_intake_app(database, intake_db, agent_transport, public_url=PUBLIC_URL, providers=providers)


@pytest.fixture
def provider() -> Iterator[responses.RequestsMock]:
    """The providers' endpoints; any call nobody registered fails the request."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


class Client:
    """A signed-in client of the intake, in its own browser."""

    def __init__(self, app, owner_conn) -> None:
        self.visitor = Visitor(app)
        email = new_email()
        assert self.visitor.signup(email, PASSWORD).status_code == 303
        self.visitor.get("/connections")  # shows, and so uses up, the welcome notice
        self.client_id = client_of(owner_conn, email)

    def page(self, path: str) -> str:
        response = self.visitor.get(path)
        assert response.status_code == 200, path
        return response.get_data(as_text=True)

    def connect(self, provider: str, **fields: str):
        return self.visitor.post(f"/connections/{provider}/connect", fields, token_from="/connections")

    def callback(self, provider: str, **params: str):
        return self.visitor.get(f"/connections/oauth/{provider}/callback", query_string=params)


@pytest.fixture
def me(app, owner_conn) -> Client:
    return Client(app, owner_conn)


def save_automation(intake_db, client_id: uuid.UUID, *capabilities: str, name: str | None = None,
                    status: str = "enabled") -> uuid.UUID:
    steps = [{"capability": capability, "input": {}} for capability in capabilities]
    with tenant_transaction(intake_db, client_id) as conn:
        return conn.execute(
            "INSERT INTO automations (client_id, name, status, steps) VALUES (%s, %s, %s, %s) RETURNING automation_id",
            [client_id, name or f"Automation {secrets.token_hex(3)}", status, Jsonb(steps)],
        ).fetchone()[0]


def consent_url(response) -> tuple[str, dict[str, str]]:
    """The provider URL the page sends the browser to, and its query parameters."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    link = re.search(r'id="continue" href="([^"]+)"', body)
    refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', body)
    assert link and refresh
    url = html.unescape(link.group(1))
    assert html.unescape(refresh.group(1)) == url
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert all(len(v) == 1 for v in parse_qs(parts.query).values())
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def token_requests(mock: responses.RequestsMock) -> list:
    return [call for call in mock.calls if call.request.url in TOKEN_URLS]


def google_grants(mock: responses.RequestsMock, scope: str) -> dict[str, str]:
    """The token endpoint's next answer; returns the tokens it hands out."""
    tokens = {"access": f"ya29.canary-{secrets.token_hex(12)}", "refresh": f"1//canary-{secrets.token_hex(12)}"}
    mock.post(GOOGLE_TOKEN_URL, json={"access_token": tokens["access"], "refresh_token": tokens["refresh"],
                                      "expires_in": 3599, "token_type": "Bearer", "scope": scope})
    return tokens


def every_row(owner_conn: psycopg.Connection) -> str:
    """Every row of every table in the database, as text."""
    tables = owner_conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    dump = []
    for schema, table in tables:
        query = sql.SQL("SELECT t::text FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
        dump.extend(row[0] for row in owner_conn.execute(query))
    return "\n".join(dump)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JSONFormatter("test")
    return "\n".join(formatter.format(r) + r.getMessage() for r in caplog.records)


def connect_google(me: Client, intake_db, mock, *, capabilities=("gmail.search",), granted: str | None = None,
                   **fields: str):
    """Connect Google through consent and callback; returns the callback's answer and the tokens."""
    if not fields:
        fields = {"automation_id": str(save_automation(intake_db, me.client_id, *capabilities))}
    _, query = consent_url(me.connect("google", **fields))
    tokens = google_grants(mock, granted if granted is not None else query["scope"])
    answer = me.callback("google", state=query["state"], code=f"4/0canary-code-{secrets.token_hex(8)}",
                         iss="https://accounts.google.com")
    return answer, tokens, query


# --- consent out -------------------------------------------------------------------------


def test_connecting_google_for_an_automation_that_only_reads_asks_for_exactly_its_read_scope_with_s256_and_state(
        me, intake_db, app, owner_conn):
    automation_id = save_automation(intake_db, me.client_id, "gmail.list_recent", "llm.summarise")
    response = me.connect("google", automation_id=str(automation_id))
    endpoint, query = consent_url(response)
    assert endpoint == GOOGLE_AUTHORIZE
    assert query["scope"] == G + "gmail.metadata"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_IDS["google"]
    assert query["redirect_uri"] == PUBLIC_URL + "/connections/oauth/google/callback"
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert len(query["state"]) >= 43
    verifier = pkce_verifier(pkce_key(app.config["HAPEX"]), query["state"])
    assert query["code_challenge"] == pkce_challenge(verifier)
    assert "include_granted_scopes" not in query
    assert verifier not in response.get_data(as_text=True)
    stored = owner_conn.execute("SELECT client_id, requested_scopes, connection_id FROM oauth_states").fetchall()
    assert stored == [(me.client_id, [G + "gmail.metadata"], None)]


@pytest.mark.parametrize("capability", READ_ONLY_OAUTH_CAPABILITIES)
def test_an_automation_that_only_reads_is_asked_no_write_scope(me, intake_db, capability):
    provider = PROVIDERS[CAPABILITIES[capability].provider]
    automation_id = save_automation(intake_db, me.client_id, capability)
    _, query = consent_url(me.connect(provider.key, automation_id=str(automation_id)))
    asked = query["scope"].split(provider.scope_separator)
    assert asked == [*provider.base_scopes, *CAPABILITIES[capability].scopes]
    assert all(provider.scope(name).access is Access.READ for name in asked if name not in provider.base_scopes)


def test_with_no_automation_named_consent_asks_for_what_the_saved_automations_need(me, intake_db):
    save_automation(intake_db, me.client_id, "gmail.list_recent")
    save_automation(intake_db, me.client_id, "sheets.read", "slack.post_message")
    _, query = consent_url(me.connect("google"))
    assert sorted(query["scope"].split(" ")) == [G + "gmail.metadata", G + "spreadsheets.readonly"]


def test_connecting_a_provider_no_automation_uses_is_refused_and_nothing_is_asked(me, intake_db, owner_conn):
    save_automation(intake_db, me.client_id, "slack.post_message")
    response = me.connect("google")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "None of your automations uses Google Workspace yet" in body
    other = save_automation(intake_db, me.client_id, "llm.summarise")
    refused = me.connect("google", automation_id=str(other))
    assert refused.status_code == 400
    assert "That automation does not use Google Workspace" in refused.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


def test_an_automation_whose_only_use_of_google_is_its_new_email_trigger_connects_google(me, intake_db):
    automation_id = save_automation(intake_db, me.client_id, "slack.post_message", name="New email to Slack")
    with tenant_transaction(intake_db, me.client_id) as conn:
        conn.execute("UPDATE automations SET trigger = %s WHERE automation_id = %s",
                     [Jsonb({"kind": "poll", "source": "gmail.new_email", "every_minutes": 5, "options": {}}),
                      automation_id])
    listing = me.page("/connections")
    google = listing[listing.index('id="provider-google"'):listing.index('id="provider-slack"')]
    assert "Used by: New email to Slack." in google and G + "gmail.readonly" in google
    endpoint, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    assert endpoint == GOOGLE_AUTHORIZE and query["scope"] == G + "gmail.readonly"


def test_incremental_consent_asks_only_for_the_missing_scope_and_widens_the_same_connection(
        me, intake_db, agent_db, owner_conn):
    existing = make_connection(agent_db, me.client_id, provider="google", scopes=[G + "spreadsheets.readonly"])
    automation_id = save_automation(intake_db, me.client_id, "sheets.read", "calendar.list_events")
    listing = me.page("/connections")
    will_ask = listing[listing.index("Hapex will ask Google Workspace for:"):listing.index('id="provider-slack"')]
    assert G + "calendar.events.readonly" in will_ask and G + "spreadsheets.readonly" not in will_ask
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    assert query["scope"] == G + "calendar.events.readonly"
    assert query["include_granted_scopes"] == "true"
    assert owner_conn.execute("SELECT connection_id FROM oauth_states").fetchone() == (existing,)


def test_upgrading_gmail_metadata_to_readonly_does_not_merge_the_old_grant(me, intake_db, agent_db):
    make_connection(agent_db, me.client_id, provider="google", scopes=[G + "gmail.metadata", G + "spreadsheets"])
    save_automation(intake_db, me.client_id, "gmail.list_recent", "sheets.append")
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    # Gmail refuses searches on a token holding gmail.metadata beside gmail.readonly.
    assert "include_granted_scopes" not in query
    assert sorted(query["scope"].split(" ")) == [G + "gmail.readonly", G + "spreadsheets"]


def test_a_connection_that_already_grants_everything_asks_nothing(me, intake_db, agent_db, owner_conn):
    existing = make_connection(agent_db, me.client_id, provider="google", scopes=[G + "gmail.readonly"])
    automation_id = save_automation(intake_db, me.client_id, "gmail.list_recent")
    response = me.connect("google", automation_id=str(automation_id))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/connections/{existing}"
    assert "already grants everything" in me.page(f"/connections/{existing}")
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


@pytest.mark.parametrize("configured", [("google", "slack")])
def test_a_provider_without_a_client_id_is_shown_unavailable_and_its_connect_is_refused(
        me, intake_db, owner_conn):
    automation_id = save_automation(intake_db, me.client_id, "outlook.search_mail")
    page = me.page("/connections")
    section = page[page.index('id="provider-microsoft"'):page.index('id="provider-notion"')]
    assert "unavailable on this deployment" in section
    assert "/connections/microsoft/connect" not in section
    google = page[page.index('id="provider-google"'):page.index('id="provider-slack"')]
    assert "unavailable on this deployment" not in google
    response = me.connect("microsoft", automation_id=str(automation_id))
    assert response.status_code == 409
    assert "Microsoft 365 is not available on this Hapex deployment" in response.get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


def test_without_a_public_url_no_oauth_provider_can_be_connected(database, intake_db, agent_transport, owner_conn,
                                                                  provider_clients):
    # Client ids configured, public_url unset (IntakeConfig.from_env refuses that; built directly here).
    providers = resolve_catalog(Environment(provider_clients))
    app = build_intake_app(database, intake_db, agent_transport, providers=providers)
    client = Client(app, owner_conn)
    automation_id = save_automation(intake_db, client.client_id, "gmail.search")
    assert client.connect("google", automation_id=str(automation_id)).status_code == 409
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


@pytest.mark.parametrize("provider_key", ["webhook", "anthropic", "nosuchprovider"])
def test_only_oauth_providers_have_consent_routes(me, provider_key):
    assert me.connect(provider_key).status_code == 404
    assert me.callback(provider_key, state="s", code="c").status_code == 404


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_forged_connection_forms_change_nothing_and_reach_neither_agent_nor_provider(
        me, intake_db, agent_db, agent_transport, provider, owner_conn, token):
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    connection_id = make_connection(agent_db, me.client_id, provider="slack", scopes=["chat:write"])
    agent_transport.calls.clear()  # signing in asked the agent to check the password
    forms = {
        "/connections/google/connect": {"automation_id": str(automation_id)},
        "/connections/api-key": {"provider": "webhook", "api_key": "whsec_" + "k" * 24},
        f"/connections/{connection_id}/disconnect": {"confirm": "y"},
        f"/connections/{connection_id}/reduce-access": {},
    }
    for path, form in forms.items():
        if token is not None:
            form["csrf_token"] = token
        response = me.visitor.client.post(path, data=form, base_url=PUBLIC_URL, headers={"Referer": PUBLIC_URL})
        assert response.status_code == 400, path
        assert "did not come from this site" in response.get_data(as_text=True)
    assert agent_transport.calls == []
    assert len(provider.calls) == 0
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)
    assert owner_conn.execute("SELECT provider, status FROM connections").fetchall() == [("slack", "active")]


# --- the callback ------------------------------------------------------------------------


CODE = "4/0canary-code"


@pytest.mark.parametrize(
    ("case", "params"),
    [
        ("missing state", lambda state: {"code": CODE}),
        ("altered state", lambda state: {"state": state[:-2] + "xx", "code": CODE}),
        ("expired state", lambda state: {"state": state, "code": CODE}),
        ("wrong issuer", lambda state: {"state": state, "code": CODE, "iss": "https://evil.example"}),
        ("repeated code", lambda state: {"state": state, "code": [CODE, "4/0other"]}),
    ],
)
def test_a_forged_or_stale_callback_is_refused_and_no_token_request_is_sent(
        me, intake_db, provider, owner_conn, logs, case, params):
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    google_grants(provider, query["scope"])
    if case == "expired state":
        owner_conn.execute("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
    response = me.callback("google", **params(query["state"]))
    body = response.get_data(as_text=True)
    assert response.status_code == 400, case
    assert "Nothing was connected" in body
    assert "canary-code" not in body
    assert token_requests(provider) == []
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "canary-code" not in logged(logs)


def test_a_replayed_callback_is_refused_after_one_exchange(me, intake_db, provider, owner_conn):
    answer, _, query = connect_google(me, intake_db, provider)
    assert answer.status_code == 303
    assert len(token_requests(provider)) == 1
    google_grants(provider, query["scope"])
    replay = me.callback("google", state=query["state"], code="4/0canary-code-again")
    assert replay.status_code == 400
    assert len(token_requests(provider)) == 1
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (1,)


def test_a_code_sent_to_another_providers_callback_is_refused_and_its_state_is_spent(
        me, intake_db, provider, owner_conn):
    automation_id = save_automation(intake_db, me.client_id, "slack.post_message")
    _, slack = consent_url(me.connect("slack", automation_id=str(automation_id)))
    assert slack["scope"] == "chat:write"
    provider.post(SLACK_TOKEN_URL, json={"ok": True, "access_token": "xoxb-canary", "scope": "chat:write"})
    provider.post(GOOGLE_TOKEN_URL, json={"access_token": "ya29.canary", "expires_in": 3599})
    mixed_up = me.callback("google", state=slack["state"], code="4/0canary-code")
    assert mixed_up.status_code == 400
    again = me.callback("slack", state=slack["state"], code="4/0canary-code")
    assert again.status_code == 400
    assert token_requests(provider) == []
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


def test_a_callback_from_another_session_of_the_same_client_is_refused(me, app, intake_db, provider, owner_conn):
    _, query = consent_url(me.connect("google", automation_id=str(save_automation(intake_db, me.client_id,
                                                                                    "gmail.search"))))
    email = owner_conn.execute("SELECT email FROM users WHERE client_id = %s", [me.client_id]).fetchone()[0]
    other_browser = Visitor(app)
    assert other_browser.login(email, PASSWORD).status_code == 303
    google_grants(provider, query["scope"])
    response = other_browser.get("/connections/oauth/google/callback",
                                 query_string={"state": query["state"], "code": "4/0canary-code"})
    assert response.status_code == 400
    assert token_requests(provider) == []


def test_a_provider_that_reports_an_error_connects_nothing(me, intake_db, provider, owner_conn):
    _, query = consent_url(me.connect("google", automation_id=str(save_automation(intake_db, me.client_id,
                                                                                    "gmail.search"))))
    response = me.callback("google", state=query["state"], error="access_denied", iss="https://accounts.google.com")
    assert response.status_code == 400
    assert "reported that access was not granted" in response.get_data(as_text=True)
    assert token_requests(provider) == []
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)


def test_a_successful_callback_stores_ciphertext_granted_scopes_and_expiry_and_no_plaintext_anywhere(
        me, app, intake_db, provider, owner_conn, logs):
    answer, tokens, query = connect_google(me, intake_db, provider, capabilities=("gmail.list_recent",))
    assert answer.status_code == 303
    connection_id = owner_conn.execute("SELECT connection_id FROM connections").fetchone()[0]
    assert answer.headers["Location"] == f"/connections/{connection_id}"

    sent = parse_qs(token_requests(provider)[0].request.body)
    code = sent["code"][0]
    assert code.startswith("4/0canary-code-")
    assert sent["code_verifier"] == [pkce_verifier(pkce_key(app.config["HAPEX"]), query["state"])]
    assert sent["redirect_uri"] == [PUBLIC_URL + "/connections/oauth/google/callback"]
    assert sent["client_id"] == [CLIENT_IDS["google"]]

    row = owner_conn.execute(
        "SELECT status, scopes_granted, scopes_granted_at, access_token_expires_at FROM connections").fetchone()
    assert row[0] == "active" and row[1] == [G + "gmail.metadata"]
    assert row[2] is not None and row[3] is not None
    purposes = owner_conn.execute(
        "SELECT purpose, length(ciphertext) FROM credentials ORDER BY purpose").fetchall()
    assert [p for p, _ in purposes] == ["access_token", "refresh_token"] and all(n > 16 for _, n in purposes)

    page = me.page(answer.headers["Location"])
    assert "Google Workspace is connected." in page
    assert "status-active" in page and G + "gmail.metadata" in page
    listing = me.page("/connections")
    assert G + "gmail.metadata" in listing

    dump = every_row(owner_conn)
    for secret in (tokens["access"], tokens["refresh"], code, sent["code_verifier"][0], query["state"]):
        assert secret not in dump
        assert secret.encode().hex() not in dump
        assert secret not in page and secret not in listing
        assert secret not in logged(logs)


def test_when_the_provider_grants_less_than_asked_the_page_lists_what_is_missing(me, intake_db, provider):
    answer, _, query = connect_google(me, intake_db, provider, capabilities=("gmail.search", "sheets.append"),
                                      granted=G + "gmail.readonly")
    assert sorted(query["scope"].split(" ")) == [G + "gmail.readonly", G + "spreadsheets"]
    assert answer.status_code == 303
    page = me.page(answer.headers["Location"])
    assert "did not grant everything" in page
    missing = page[page.index("Not granted yet"):]
    assert G + "spreadsheets" in missing and G + "gmail.readonly" not in missing
    assert "Ask Google Workspace for it" in missing


def test_a_connection_that_needs_reauth_is_reconnected_in_place(me, intake_db, agent_db, provider, owner_conn):
    existing = make_connection(agent_db, me.client_id, provider="google", status="needs_reauth",
                               scopes=[G + "gmail.readonly"])
    save_automation(intake_db, me.client_id, "gmail.search")
    assert "Reconnect" in me.page("/connections")
    answer, _, query = connect_google(me, intake_db, provider, connection_id=str(existing))
    assert query["scope"] == G + "gmail.readonly"
    assert answer.status_code == 303 and answer.headers["Location"] == f"/connections/{existing}"
    assert owner_conn.execute("SELECT connection_id, status FROM connections").fetchall() == [(existing, "active")]


# --- API keys ----------------------------------------------------------------------------


def test_an_api_key_is_forwarded_once_and_only_its_last_four_characters_are_ever_shown(
        me, owner_conn, agent_transport, logs):
    key = "whsec_" + secrets.token_urlsafe(24) + "Zq9w"
    response = me.visitor.post("/connections/api-key", {"provider": "webhook", "api_key": key,
                                                         "label": "Orders hook"}, token_from="/connections")
    assert response.status_code == 303
    assert ("POST", f"/v1/clients/{me.client_id}/connections/api-key") in agent_transport.calls
    page = me.page(response.headers["Location"])
    assert "…Zq9w" in page and "Orders hook" in page
    listing = me.page("/connections")
    hint, purpose = owner_conn.execute(
        "SELECT c.secret_hint, k.purpose FROM connections c JOIN credentials k USING (connection_id)").fetchone()
    assert (hint, purpose) == ("Zq9w", "api_key")
    for text in (page, listing, every_row(owner_conn), logged(logs)):
        assert key not in text and key[:-4] not in text


def test_a_malformed_api_key_gets_a_form_message_and_is_not_echoed(me, owner_conn, agent_transport):
    key = "short-Zq9w"
    response = me.visitor.post("/connections/api-key", {"provider": "webhook", "api_key": key},
                               token_from="/connections")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Use between 16 and 4096 characters." in body
    assert key not in body
    assert not [c for c in agent_transport.calls if c[1].endswith("/api-key")]
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)


# --- disconnecting -----------------------------------------------------------------------


def test_disconnecting_revokes_at_the_provider_deletes_the_ciphertext_and_names_the_paused_automations(
        me, intake_db, provider, owner_conn):
    digest = save_automation(intake_db, me.client_id, "gmail.search", "llm.summarise", name="Inbox digest")
    save_automation(intake_db, me.client_id, "slack.post_message", name="Slack only")
    answer, tokens, _ = connect_google(me, intake_db, provider, automation_id=str(digest))
    connection_path = answer.headers["Location"]
    provider.post(GOOGLE_REVOKE_URL, status=200)

    unconfirmed = me.visitor.post(connection_path + "/disconnect", {}, token_from=connection_path)
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in unconfirmed.get_data(as_text=True)
    assert not [c for c in provider.calls if c.request.url == GOOGLE_REVOKE_URL]

    response = me.visitor.post(connection_path + "/disconnect", {"confirm": "y"}, token_from=connection_path)
    assert response.status_code == 303 and response.headers["Location"] == connection_path
    revocations = [c for c in provider.calls if c.request.url == GOOGLE_REVOKE_URL]
    assert len(revocations) == 1
    assert parse_qs(revocations[0].request.body)["token"] == [tokens["refresh"]]
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    page = me.page(connection_path)
    assert "status-revoked" in page
    assert "confirmed that Hapex&#39;s access is revoked" in page
    assert ("Paused because they used Google Workspace: Inbox digest. Connect Google Workspace again, "
            "then enable each one again to resume it.") in page
    statuses = dict(owner_conn.execute("SELECT name, status FROM automations").fetchall())
    assert statuses == {"Inbox digest": "paused", "Slack only": "enabled"}
    assert "Disconnect Google Workspace" not in page


def test_another_clients_connection_and_automation_ids_are_404_everywhere(
        me, intake_db, agent_db, agent_transport, owner_conn):
    theirs = make_client(intake_db, name="Neighbour")
    make_user(intake_db, theirs)
    connection = make_connection(agent_db, theirs, provider="google", status="needs_reauth",
                                 scopes=[G + "gmail.readonly"])
    automation = save_automation(intake_db, theirs, "gmail.search", name="Neighbour digest")
    save_automation(intake_db, me.client_id, "gmail.search")
    missing = me.visitor.get(f"/connections/{uuid.uuid4()}")
    stolen = me.visitor.get(f"/connections/{connection}")
    assert stolen.status_code == missing.status_code == 404
    assert stolen.get_data() == missing.get_data()
    disconnect = me.visitor.post(f"/connections/{connection}/disconnect", {"confirm": "y"},
                                 token_from="/connections")
    assert disconnect.status_code == 404
    assert me.connect("google", connection_id=str(connection)).status_code == 404
    assert me.connect("google", automation_id=str(automation)).status_code == 404
    assert not [c for c in agent_transport.calls if c[0] == "DELETE"]
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)
    assert owner_conn.execute("SELECT status FROM connections").fetchone() == ("needs_reauth",)
    assert "Neighbour digest" not in me.page("/connections")


# --- a broken or hostile agent behind the callback ---------------------------------------


@pytest.mark.parametrize(("status", "body"), [
    pytest.param(201, {"connection": {"connection_id": "CANARY-AGENT-ANSWER"}}, id="connection id not an id"),
    pytest.param(201, b"<html>CANARY-AGENT-ANSWER</html>", id="201 not json"),
    pytest.param(409, {"error": "provider_not_configured", "message": "CANARY-AGENT-ANSWER" * 1000},
                 id="huge message"),
    pytest.param(502, {"error": "authorization_refused", "message": "CANARY-AGENT-ANSWER"}, id="5xx with a name"),
])
def test_a_callback_the_agent_answers_badly_for_stores_nothing_and_echoes_nothing(
        database, intake_db, agent_service_app, provider_clients, owner_conn, logs, status, body):
    from tests.integration.test_intake_hostile_agent import HostileAgent

    hostile = HostileAgent(agent_service_app)
    app = build_intake_app(database, intake_db, hostile, public_url=PUBLIC_URL,
                           providers=resolve_catalog(Environment(provider_clients)))
    me = Client(app, owner_conn)
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    hostile.answer("POST", r"/v1/clients/[^/]+/connections/oauth", status, body)
    answer = me.callback("google", state=query["state"], code="4/0canary-code-" + secrets.token_hex(8),
                         iss="https://accounts.google.com")
    text = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 503
    assert "so nothing was stored. Please start again in a few minutes." in text
    assert "CANARY-AGENT-ANSWER" not in text and "CANARY-AGENT-ANSWER" not in logged(logs)
    assert ("POST", f"/v1/clients/{me.client_id}/connections/oauth") in hostile.calls
    assert owner_conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)


def test_a_hostile_agents_success_answer_shows_only_scopes_the_intake_asked_for_and_a_four_character_hint(
        database, intake_db, agent_service_app, provider_clients, owner_conn):
    from tests.integration.test_intake_hostile_agent import HostileAgent

    hostile = HostileAgent(agent_service_app)
    app = build_intake_app(database, intake_db, hostile, public_url=PUBLIC_URL,
                           providers=resolve_catalog(Environment(provider_clients)))
    me = Client(app, owner_conn)
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    asked = query["scope"].split()[0]
    hostile.answer("POST", r"/v1/clients/[^/]+/connections/oauth", 201,
                   {"connection": {"connection_id": str(uuid.uuid4())},
                    "missing_scopes": ["<b>CANARY-AGENT-ANSWER</b>", asked]})
    me.callback("google", state=query["state"], code="4/0code-" + secrets.token_hex(8),
                iss="https://accounts.google.com")
    page = html.unescape(me.page("/connections"))
    assert f"Not granted: {asked}." in page
    assert "CANARY-AGENT-ANSWER" not in page

    hostile.answer("POST", r"/v1/clients/[^/]+/connections/api-key", 201,
                   {"connection": {"connection_id": str(uuid.uuid4()), "secret_hint": "CANARY-AGENT-ANSWER-Zq9w"}})
    me.visitor.post("/connections/api-key", {"provider": "webhook", "api_key": "whsec_" + "k" * 30},
                    token_from="/connections")
    page = html.unescape(me.page("/connections"))
    assert "only its last four characters, …Zq9w." in page
    assert "CANARY-AGENT-ANSWER" not in page


def test_a_client_the_agent_does_not_know_is_a_clear_error_not_a_missing_connection(
        database, intake_db, agent_service_app, provider_clients, owner_conn):
    from tests.integration.test_intake_hostile_agent import HostileAgent

    hostile = HostileAgent(agent_service_app)
    app = build_intake_app(database, intake_db, hostile, public_url=PUBLIC_URL,
                           providers=resolve_catalog(Environment(provider_clients)))
    me = Client(app, owner_conn)
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    _, query = consent_url(me.connect("google", automation_id=str(automation_id)))
    hostile.answer("POST", r"/v1/clients/[^/]+/connections/oauth", 404,
                   {"error": "client_not_found", "message": "No such client."})
    answer = me.callback("google", state=query["state"], code="4/0code-" + secrets.token_hex(8),
                         iss="https://accounts.google.com")
    text = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 503
    assert "so nothing was stored. Please start again in a few minutes." in text
    assert "no longer exists" not in text


# --- issue 19 §2: OAuth as a real authorization server behaves -----------------------------


def test_a_revocation_the_provider_refuses_is_told_plainly_with_the_providers_manage_access_link(
        me, intake_db, provider, owner_conn):
    answer, _, _ = connect_google(me, intake_db, provider)
    connection_path = answer.headers["Location"]
    provider.post(GOOGLE_REVOKE_URL, status=401, json={"error": "invalid_client"})
    response = me.visitor.post(connection_path + "/disconnect", {"confirm": "y"}, token_from=connection_path)
    assert response.status_code == 303
    page = html.unescape(me.page(connection_path))
    assert "had already ended" not in page
    assert "Google Workspace has not confirmed that Hapex's access is revoked" in page
    assert "remove Hapex at https://myaccount.google.com/connections" in page
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (2,)
    assert owner_conn.execute("SELECT status_reason FROM connections").fetchone() == ("revocation_pending",)


def test_reconnect_from_an_automations_page_renews_the_broken_connection_instead_of_adding_a_second(
        me, intake_db, agent_db, provider, owner_conn):
    broken = make_connection(agent_db, me.client_id, provider="google", status="needs_reauth",
                             scopes=[G + "gmail.readonly"])
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    page = me.page(f"/automations/{automation_id}")
    assert "Reconnect" in page and 'name="connection_id"' not in page
    answer, _, _ = connect_google(me, intake_db, provider, automation_id=str(automation_id))
    assert answer.status_code == 303 and answer.headers["Location"] == f"/connections/{broken}"
    assert owner_conn.execute("SELECT connection_id, status FROM connections").fetchall() == [(broken, "active")]
    # The one refresh token stored is the new one: none of the old grant is left behind.
    assert owner_conn.execute(
        "SELECT count(*) FROM credentials WHERE purpose = 'refresh_token'").fetchone() == (1,)


def _only_steps(intake_db, client_id, *capabilities: str) -> None:
    """The client edits its automations: every one of them now has just these steps."""
    steps = [{"capability": capability, "input": {}} for capability in capabilities]
    with tenant_transaction(intake_db, client_id) as conn:
        conn.execute("UPDATE automations SET steps = %s", [Jsonb(steps)])


def test_a_write_scope_no_automation_uses_any_more_is_named_and_access_can_be_reduced_to_what_is_used(
        me, intake_db, provider, owner_conn):
    answer, tokens, _ = connect_google(me, intake_db, provider, capabilities=("sheets.append",))
    connection_path = answer.headers["Location"]
    assert "Granted but not used" not in me.page(connection_path)
    _only_steps(intake_db, me.client_id, "sheets.read")  # the only writing step was deleted
    listing = me.page("/connections")
    assert "Granted but not used by any automation: <code>" + G + "spreadsheets</code>" in listing
    page = html.unescape(me.page(connection_path))
    unused = page[page.index("Granted but not used"):]
    assert G + "spreadsheets" in unused and "Reduce access" in unused
    provider.post(GOOGLE_REVOKE_URL, status=200)

    response = me.visitor.post(connection_path + "/reduce-access", {}, token_from=connection_path)
    revocations = [c for c in provider.calls if c.request.url == GOOGLE_REVOKE_URL]
    assert len(revocations) == 1
    sent = parse_qs(revocations[0].request.body)
    assert sent["token"] == [tokens["refresh"]] and sent["client_secret"][0].startswith("google-client-secret-")
    _, query = consent_url(response)
    assert query["scope"] == G + "spreadsheets.readonly"
    assert "include_granted_scopes" not in query
    assert "Hapex ended its earlier access" in response.get_data(as_text=True)
    connection_id = uuid.UUID(connection_path.rsplit("/", 1)[1])
    assert owner_conn.execute("SELECT status, scopes_granted FROM connections").fetchone() == ("pending", [])
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    assert owner_conn.execute("SELECT connection_id FROM oauth_states").fetchone() == (connection_id,)

    google_grants(provider, G + "spreadsheets.readonly")
    back = me.callback("google", state=query["state"], code="4/0canary-code-narrow", iss="https://accounts.google.com")
    assert back.status_code == 303 and back.headers["Location"] == connection_path
    assert owner_conn.execute("SELECT connection_id, status, scopes_granted FROM connections").fetchall() == [
        (connection_id, "active", [G + "spreadsheets.readonly"])]
    assert "Granted but not used" not in me.page(connection_path)


def test_reducing_access_the_provider_does_not_confirm_changes_nothing_and_says_so(
        me, intake_db, provider, owner_conn):
    answer, _, _ = connect_google(me, intake_db, provider, capabilities=("sheets.append",))
    connection_path = answer.headers["Location"]
    _only_steps(intake_db, me.client_id, "sheets.read")
    provider.post(GOOGLE_REVOKE_URL, status=401, json={"error": "invalid_client"})
    response = me.visitor.post(connection_path + "/reduce-access", {}, token_from=connection_path)
    assert response.status_code == 409
    text = html.unescape(response.get_data(as_text=True))
    assert "has not confirmed that it ended Hapex's current access, so nothing was changed" in text
    assert "https://myaccount.google.com/connections" in text
    assert owner_conn.execute("SELECT status, scopes_granted FROM connections").fetchone() == (
        "active", [G + "spreadsheets"])
    assert owner_conn.execute("SELECT count(*) FROM credentials").fetchone() == (2,)
    assert owner_conn.execute("SELECT count(*) FROM oauth_states").fetchone() == (0,)


def test_widening_google_access_while_an_unused_write_scope_is_granted_ends_the_grant_instead_of_merging_it(
        me, intake_db, provider, owner_conn):
    answer, _, _ = connect_google(me, intake_db, provider, capabilities=("sheets.append",))
    _only_steps(intake_db, me.client_id, "sheets.read")
    calendar = save_automation(intake_db, me.client_id, "calendar.list_events")
    provider.post(GOOGLE_REVOKE_URL, status=200)
    response = me.connect("google", automation_id=str(calendar))
    _, query = consent_url(response)
    # include_granted_scopes would have kept `spreadsheets` (write) on the new token unseen.
    assert "include_granted_scopes" not in query
    assert sorted(query["scope"].split(" ")) == [G + "calendar.events.readonly", G + "spreadsheets.readonly"]
    assert len([c for c in provider.calls if c.request.url == GOOGLE_REVOKE_URL]) == 1
    ended = html.unescape(response.get_data(as_text=True))
    assert "Hapex ended its earlier access" in ended and G + "spreadsheets" in ended


# --- back to the automation ------------------------------------------------------------


def test_connecting_from_an_automations_page_brings_the_client_back_to_it(me, intake_db, provider, owner_conn):
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    answer, _, _ = connect_google(me, intake_db, provider, automation_id=str(automation_id), back="automation")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/automations/{automation_id}#need-google"
    page = me.page(f"/automations/{automation_id}")
    assert "Google Workspace is connected." in page
    # The next connection started from the connections page lands on the connection again.
    again, _, _ = connect_google(me, intake_db, provider, capabilities=("sheets.append",))
    connection_id = owner_conn.execute("SELECT connection_id FROM connections WHERE status = 'active'").fetchone()[0]
    assert again.headers["Location"] == f"/connections/{connection_id}"


def test_an_unknown_back_page_is_refused_and_nothing_is_asked(me, intake_db, provider):
    automation_id = save_automation(intake_db, me.client_id, "gmail.search")
    response = me.connect("google", automation_id=str(automation_id), back="https://evil.example/")
    assert response.status_code == 400
    assert token_requests(provider) == []
