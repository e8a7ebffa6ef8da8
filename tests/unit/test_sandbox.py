"""The local provider sandbox, served over TLS on loopback, driven by Hapex's own OAuth client code.

What a careless client would get away with against a lax provider is refused here as a strict
one refuses it: no PKCE or plain PKCE, another redirect URI, a reused refresh token, revocation
without client authentication, a token without the scope a call needs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from agent_service.chat.proposal import check_proposal
from agent_service.config import AgentConfig
from agent_service.connections import provider_oauth as oauth_client
from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from hapex.localstack.stack import environment_for, local_environment
from hapex.sandbox import create_app, wiring
from hapex.sandbox.claude import MARK
from hapex.sandbox.state import Store
from hapex.settings import LauncherSettings, SandboxSettings
from intake.config import IntakeConfig
from shared.catalog import PROVIDERS
from shared.config import ConfigError
from shared.secret import Secret
from tests.e2e.conftest import free_port
from tests.unit.test_config import agent_env, intake_env

G = "https://www.googleapis.com/auth/"
INTAKE = "https://localhost:9443"
SECRET = "sandbox-secret-" + secrets.token_urlsafe(24)


class Sandbox:
    def __init__(self, tls: LocalTLS) -> None:
        port = free_port()
        self.url = f"https://localhost:{port}"
        self.ca = str(tls.ca_cert)
        self.store = Store(None)
        settings = SandboxSettings(secret=SECRET, base_url=self.url, intake_url=INTAKE, bind=f"127.0.0.1:{port}",
                                   tls_cert_file=str(tls.server_cert), tls_key_file=str(tls.server_key),
                                   state_file=None, access_token_seconds=60)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        self.server = make_server("127.0.0.1", port, create_app(settings, self.store), threaded=True,
                                  ssl_context=context)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def provider(self, key: str):  # type: ignore[no-untyped-def]
        return PROVIDERS[key].with_endpoints(wiring.provider_endpoints(self.url, PROVIDERS[key]))

    def client(self, key: str) -> oauth_client.OAuthClient:
        return oauth_client.OAuthClient(wiring.client_id(key), Secret(wiring.client_secret(SECRET, key)))

    def get(self, path: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        return requests.get(self.url + path, verify=self.ca, timeout=10, allow_redirects=False, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        return requests.post(self.url + path, verify=self.ca, timeout=10, allow_redirects=False, **kwargs)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    running = Sandbox(ensure_local_tls(tmp_path_factory.mktemp("tls")))
    yield running
    running.server.shutdown()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def authorization_query(provider: str, scopes: list[str], challenge: str | None, **extra: str) -> dict[str, str]:
    query = {"response_type": "code", "client_id": wiring.client_id(provider), "state": secrets.token_urlsafe(8),
             "redirect_uri": f"{INTAKE}/connections/oauth/{provider}/callback",
             "scope": PROVIDERS[provider].scope_separator.join(scopes)}
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    query.update(extra)
    return query


def consent(sandbox: Sandbox, query: dict[str, str], *, tick: list[str] | None = None,
            decision: str = "allow") -> dict[str, str]:
    """The consent page, answered; the parameters the sandbox sent back to the redirect URI."""
    path = f"/{query['redirect_uri'].split('/')[-2]}/oauth/authorize?" + urlencode(query)
    page = sandbox.get(path)
    assert page.status_code == 200, page.text
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    ticked = query["scope"].replace(",", " ").split() if tick is None else tick
    form = {"form_token": form_token, "decision": decision, **{f"scope:{name}": "on" for name in ticked}}
    answer = sandbox.post(path, data=form)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(query["redirect_uri"] + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(sandbox: Sandbox, provider: str, scopes: list[str], tick: list[str] | None = None
            ) -> oauth_client.TokenSet:
    verifier, challenge = pkce()
    query = authorization_query(provider, scopes, challenge)
    back = consent(sandbox, query, tick=tick)
    return oauth_client.exchange_code(sandbox.provider(provider), sandbox.client(provider), code=Secret(back["code"]),
                                      code_verifier=Secret(verifier), redirect_uri=query["redirect_uri"],
                                      verify=sandbox.ca)


def bearer(tokens: oauth_client.TokenSet) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token.reveal()}"}


def test_the_consent_page_lists_each_requested_scope_with_a_checkbox_and_offers_deny(sandbox):
    _, challenge = pkce()
    query = authorization_query("google", [G + "gmail.readonly", G + "spreadsheets"], challenge)
    page = sandbox.get("/google/oauth/authorize?" + urlencode(query)).text
    assert re.findall(r'type="checkbox" name="scope:([^"]+)"', page) == [G + "gmail.readonly", G + "spreadsheets"]
    assert "Search and read your emails" in page
    assert 'value="deny"' in page and "Sandbox." in page


def test_deny_sends_access_denied_back_with_state_and_the_issuer(sandbox):
    _, challenge = pkce()
    query = authorization_query("google", [G + "gmail.readonly"], challenge)
    back = consent(sandbox, query, decision="deny")
    assert back["error"] == "access_denied"
    assert back["state"] == query["state"]
    assert back["iss"] == f"{sandbox.url}/google"


@pytest.mark.parametrize("pkce_params", [{}, {"code_challenge": "a" * 43, "code_challenge_method": "plain"},
                                         {"code_challenge": "a" * 43}])
def test_an_authorization_request_without_s256_pkce_is_refused(sandbox, pkce_params):
    query = authorization_query("google", [G + "gmail.readonly"], None, **pkce_params)
    page = sandbox.get("/google/oauth/authorize?" + urlencode(query))
    assert page.status_code == 400
    assert "invalid_request" in page.text and "form_token" not in page.text


def test_a_redirect_uri_other_than_the_registered_one_is_refused_without_redirecting(sandbox):
    _, challenge = pkce()
    query = authorization_query("google", [G + "gmail.readonly"], challenge, redirect_uri="https://evil.example/cb")
    page = sandbox.get("/google/oauth/authorize?" + urlencode(query))
    assert page.status_code == 400 and "Location" not in page.headers


def test_a_consent_form_posted_without_its_form_token_is_refused(sandbox):
    _, challenge = pkce()
    query = authorization_query("google", [G + "gmail.readonly"], challenge)
    answer = sandbox.post("/google/oauth/authorize?" + urlencode(query), data={"decision": "allow"})
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_the_authorization_response_names_the_issuer_the_metadata_announces(sandbox):
    _, challenge = pkce()
    back = consent(sandbox, authorization_query("slack", ["chat:write"], challenge))
    metadata = sandbox.get("/slack/.well-known/oauth-authorization-server").json()
    assert back["iss"] == metadata["issuer"] == sandbox.provider("slack").issuer
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_hapex_gets_exactly_the_scopes_ticked_and_a_read_only_token_cannot_write(sandbox):
    tokens = connect(sandbox, "google", [G + "gmail.readonly", G + "spreadsheets"], tick=[G + "gmail.readonly"])
    assert tokens.granted_scopes == (G + "gmail.readonly",)
    assert tokens.refresh_token is not None and tokens.expires_at is not None
    found = sandbox.get("/google/gmail/v1/users/me/messages", params={"q": "invoices"}, headers=bearer(tokens)).json()
    assert [m["id"] for m in found["messages"]] == ["m-0001", "m-0003", "m-0004"]
    append = sandbox.post("/google/v4/spreadsheets/sandbox-sheet-0001/values/Sheet1%21A1%3AD:append",
                          json={"values": [["x"]]}, headers=bearer(tokens))
    assert append.status_code == 403
    assert append.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    assert sandbox.get("/google/gmail/v1/users/me/messages", headers={"Authorization": "Bearer forged"}
                       ).status_code == 401


def test_a_code_is_single_use_and_bound_to_its_verifier(sandbox):
    verifier, challenge = pkce()
    query = authorization_query("google", [G + "gmail.readonly"], challenge)
    code = consent(sandbox, query)["code"]
    provider, client = sandbox.provider("google"), sandbox.client("google")
    with pytest.raises(oauth_client.InvalidGrant):
        oauth_client.exchange_code(provider, client, code=Secret(code), code_verifier=Secret(pkce()[0]),
                                   redirect_uri=query["redirect_uri"], verify=sandbox.ca)
    code = consent(sandbox, query)["code"]
    oauth_client.exchange_code(provider, client, code=Secret(code), code_verifier=Secret(verifier),
                               redirect_uri=query["redirect_uri"], verify=sandbox.ca)
    with pytest.raises(oauth_client.InvalidGrant):
        oauth_client.exchange_code(provider, client, code=Secret(code), code_verifier=Secret(verifier),
                                   redirect_uri=query["redirect_uri"], verify=sandbox.ca)


def test_refresh_rotates_the_refresh_token_and_a_reused_one_ends_the_grant(sandbox):
    first = connect(sandbox, "google", [G + "gmail.readonly"])
    provider, client = sandbox.provider("google"), sandbox.client("google")
    second = oauth_client.refresh_access_token(provider, client, refresh_token=first.refresh_token, verify=sandbox.ca)
    assert second.refresh_token is not None and second.refresh_token.reveal() != first.refresh_token.reveal()
    assert sandbox.get("/google/gmail/v1/users/me/messages", headers=bearer(second)).status_code == 200
    with pytest.raises(oauth_client.InvalidGrant):
        oauth_client.refresh_access_token(provider, client, refresh_token=first.refresh_token, verify=sandbox.ca)
    # Someone replayed a rotated-out token: every token of the grant is dead now, the newest too.
    assert sandbox.get("/google/gmail/v1/users/me/messages", headers=bearer(second)).status_code == 401
    with pytest.raises(oauth_client.InvalidGrant):
        oauth_client.refresh_access_token(provider, client, refresh_token=second.refresh_token, verify=sandbox.ca)


def test_revocation_requires_client_authentication_then_ends_the_grant(sandbox):
    tokens = connect(sandbox, "google", [G + "gmail.readonly"])
    refresh = tokens.refresh_token.reveal()
    unauthenticated = sandbox.post("/google/oauth/revoke", data={"token": refresh, "client_id": wiring.client_id(
        "google")})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "invalid_client"
    wrong = sandbox.post("/google/oauth/revoke", data={"token": refresh}, auth=(wiring.client_id("google"), "nope"))
    assert wrong.status_code == 401
    assert sandbox.get("/google/gmail/v1/users/me/messages", headers=bearer(tokens)).status_code == 200
    revoked = sandbox.post("/google/oauth/revoke", data={"token": refresh, "token_type_hint": "refresh_token"},
                           auth=(wiring.client_id("google"), wiring.client_secret(SECRET, "google")))
    assert revoked.status_code == 200
    assert sandbox.get("/google/gmail/v1/users/me/messages", headers=bearer(tokens)).status_code == 401
    with pytest.raises(oauth_client.InvalidGrant):
        oauth_client.refresh_access_token(sandbox.provider("google"), sandbox.client("google"),
                                          refresh_token=tokens.refresh_token, verify=sandbox.ca)


def test_slack_posts_show_on_the_channel_page_and_auth_revoke_ends_the_grant(sandbox):
    tokens = connect(sandbox, "slack", ["chat:write"])
    assert tokens.account_label == "Crumb & Co (sandbox)"
    text = "Invoices today: " + secrets.token_hex(4)
    posted = sandbox.post("/slack/api/chat.postMessage", json={"channel": "#general", "text": text},
                          headers=bearer(tokens)).json()
    assert posted["ok"] is True and posted["channel"] == "C0SANDBOX1"
    assert text in sandbox.get("/slack/channels/general").text
    assert sandbox.post("/slack/api/chat.postMessage", json={"channel": "#nope", "text": "x"},
                        headers=bearer(tokens)).json() == {"ok": False, "error": "channel_not_found"}
    outcome = oauth_client.revoke(sandbox.provider("slack"), sandbox.client("slack"), token=tokens.access_token,
                                  token_type_hint="access_token", verify=sandbox.ca)
    assert outcome is oauth_client.RevocationOutcome.REVOKED
    assert sandbox.post("/slack/api/chat.postMessage", json={"channel": "#general", "text": "x"},
                        headers=bearer(tokens)).json() == {"ok": False, "error": "invalid_auth"}


def messages_call(sandbox: Sandbox, payload: dict, key: str | None = None) -> requests.Response:
    return sandbox.post("/anthropic/v1/messages", json=payload, headers={
        "x-api-key": key or wiring.anthropic_api_key(SECRET), "anthropic-version": "2023-06-01"})


def test_the_claude_stand_in_needs_the_sandbox_key_and_marks_what_it_writes(sandbox):
    payload = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content":
               "Summarise.\n\n<document>\n" + json.dumps([{"subject": "Invoice 7", "sender": "a@b.example"}])
               + "\n</document>"}]}
    assert messages_call(sandbox, payload, key="sk-ant-other").status_code == 401
    answer = messages_call(sandbox, payload).json()
    assert answer["content"][0]["text"].startswith(MARK)
    assert "Invoice 7 (from a@b.example)" in answer["content"][0]["text"]
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0
    assert messages_call(sandbox, payload).json()["content"] == answer["content"]  # deterministic


def test_the_claude_stand_in_reports_cache_writes_then_cache_reads_for_a_cache_control_prefix(sandbox):
    system = [{"type": "text", "text": "Long instructions " * 200 + secrets.token_hex(4),
               "cache_control": {"type": "ephemeral"}}]
    payload = {"model": "claude-sonnet-4-5", "max_tokens": 50, "system": system,
               "messages": [{"role": "user", "content": "Hello"}]}
    first, second = messages_call(sandbox, payload).json()["usage"], messages_call(sandbox, payload).json()["usage"]
    assert first["cache_creation_input_tokens"] > 0 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0 and second["input_tokens"] == first["input_tokens"]
    uncached = messages_call(sandbox, {**payload, "system": "Plain"}).json()["usage"]
    assert uncached["cache_creation_input_tokens"] == uncached["cache_read_input_tokens"] == 0


def chat_payload(text: str) -> dict:
    from agent_service.chat.prompt import system_prompt, tools

    return {"model": "claude-sonnet-4-5", "max_tokens": 2048, "system": [{"type": "text", "text": system_prompt()}],
            "tools": tools(), "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": text}]}


def test_the_chat_stand_in_proposes_the_invoice_digest_which_the_agent_accepts(sandbox):
    answer = messages_call(sandbox, chat_payload(
        "Every weekday at 8, search Gmail for invoices, summarise with Claude, post to Slack")).json()
    (use,) = answer["content"]
    assert use["type"] == "tool_use" and use["name"] == "propose_automation"
    checked = check_proposal(use["input"])
    assert checked.problems == [] and checked.automation is not None
    assert [s["capability"] for s in checked.automation["steps"]] == ["gmail.search", "llm.summarise",
                                                                      "slack.post_message"]
    assert checked.automation["trigger"] == {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "UTC"}


def test_the_chat_stand_in_asks_a_question_when_the_request_is_not_a_simple_one(sandbox):
    (use,) = messages_call(sandbox, chat_payload("Book me a flight to Lisbon")).json()["content"]
    assert use["name"] == "ask_question" and use["input"]["question"].startswith(MARK)


def launcher(tmp_path: Path, **environ: str) -> LauncherSettings:
    return LauncherSettings.from_env({"HAPEX_DATA_DIR": str(tmp_path), **environ})


def test_make_run_points_every_provider_the_operator_left_alone_at_the_sandbox(tmp_path):
    settings = launcher(tmp_path, HAPEX_SLACK_CLIENT_ID="my-real-slack-app", HAPEX_SLACK_CLIENT_SECRET="real")
    env = local_environment(embedded_db_stub(), settings)
    assert env["HAPEX_GOOGLE_CLIENT_ID"] == "hapex-sandbox-google"
    assert env["HAPEX_GOOGLE_TOKEN_URL"] == "https://localhost:8445/google/oauth/token"
    assert env["HAPEX_GOOGLE_NAME"] == "Google Workspace (sandbox)"
    assert env["ANTHROPIC_API_KEY"].startswith("sk-ant-sandbox-")
    # The operator's own Slack app wins, for Slack only: no sandbox endpoint, name or secret for it.
    assert env["HAPEX_SLACK_CLIENT_ID"] == "my-real-slack-app" and env["HAPEX_SLACK_CLIENT_SECRET"] == "real"
    assert not [k for k in env if k.startswith("HAPEX_SLACK_") and k.endswith(("_URL", "_NAME", "_ISSUER"))]
    # Outbound TLS trusts the public CAs and the local one, nothing from the shell.
    bundle = Path(env["HAPEX_OUTBOUND_CA_BUNDLE"]).read_text()
    assert (tmp_path / "tls" / "ca.pem").read_text() in bundle and bundle.count("BEGIN CERTIFICATE") > 10
    # Each service reads its part as it would in production; the sandbox's secret reaches only the sandbox.
    AgentConfig.from_env(environment_for("agent", env))
    IntakeConfig.from_env(environment_for("intake", env))
    assert "HAPEX_SANDBOX_SECRET" not in environment_for("agent", env)
    assert "HAPEX_SANDBOX_SECRET" not in environment_for("intake", env)
    assert "HAPEX_GOOGLE_CLIENT_SECRET" not in environment_for("intake", env)
    sandbox_env = environment_for("sandbox", env)
    assert "HAPEX_SANDBOX_SECRET" in sandbox_env and "CREDENTIAL_ENCRYPTION_KEY" not in sandbox_env
    SandboxSettings.from_env(sandbox_env)


def test_hapex_sandbox_0_leaves_every_provider_as_configured(tmp_path):
    env = local_environment(embedded_db_stub(), launcher(tmp_path, HAPEX_SANDBOX="0"))
    assert not [k for k in env if k.startswith(("HAPEX_GOOGLE_", "HAPEX_SLACK_", "ANTHROPIC_", "HAPEX_OUTBOUND"))]


def embedded_db_stub():  # type: ignore[no-untyped-def]
    from hapex.localstack.stack import LocalDatabase

    return LocalDatabase("postgresql://owner@localhost/hapex", None)


@pytest.mark.parametrize("service", ["intake", "agent"])
def test_services_refuse_sandbox_endpoints_with_a_public_url(tmp_path, service):
    local = {"HAPEX_GOOGLE_TOKEN_URL": "https://localhost:8445/google/oauth/token",
             "HAPEX_GOOGLE_CLIENT_ID": "hapex-sandbox-google", "HAPEX_GOOGLE_CLIENT_SECRET": "x"}
    build = (lambda **kw: IntakeConfig.from_env(intake_env(tmp_path, **kw))) if service == "intake" else \
        (lambda **kw: AgentConfig.from_env(agent_env(**kw)))
    if service == "intake":
        local.pop("HAPEX_GOOGLE_CLIENT_SECRET")
    with pytest.raises(ConfigError) as refused:
        build(INTAKE_PUBLIC_URL="https://app.example.com", **local)
    assert refused.value.variable == "HAPEX_GOOGLE_TOKEN_URL"
    assert "INTAKE_PUBLIC_URL is not local" in refused.value.problem
    build(INTAKE_PUBLIC_URL="https://localhost:8443", **local)
    build(INTAKE_PUBLIC_URL="https://app.example.com", HAPEX_GOOGLE_TOKEN_URL="https://oauth2.example.com/token")


def test_microsoft_graph_mail_search_needs_mail_read_and_calendar_writes_need_readwrite(sandbox):
    tokens = connect(sandbox, "microsoft", ["Mail.Read", "Calendars.Read", "offline_access"])
    found = sandbox.get("/microsoft/v1.0/me/messages", params={"$search": '"invoices"', "$top": 20},
                        headers=bearer(tokens)).json()["value"]
    assert [m["subject"] for m in found][:1] == ["Invoice INV-2041 for November flour"] and len(found) == 3
    assert sandbox.get("/microsoft/v1.0/me/calendarView", headers=bearer(tokens)).status_code == 200
    assert sandbox.post("/microsoft/v1.0/me/events", json={"subject": "x"}, headers=bearer(tokens)).status_code == 403


def test_the_outlook_poll_finds_a_delivered_email_in_the_sandbox_inbox_delta_and_reads_its_fields(sandbox):
    from datetime import UTC, datetime, timedelta

    from agent_service.capabilities import LLMSettings, ProviderHTTP, StepContext
    from agent_service.polls.sources import SOURCES

    tokens = connect(sandbox, "microsoft", ["Mail.Read", "offline_access"])
    ctx = StepContext(client_id=uuid.uuid4(), run_id=uuid.uuid4(), step_index=0,
                      http=ProviderHTTP(sandbox.provider("microsoft"), verify=sandbox.ca),
                      llm=LLMSettings(api_key=None), idempotency_key="poll:test")
    token, before = tokens.access_token, datetime.now(UTC) - timedelta(minutes=1)
    mailbox, history_id = list(sandbox.store.state.mailbox), sandbox.store.state.history_id
    outlook = SOURCES["outlook.new_email"]
    try:
        cursor = outlook.prime(ctx, token, {})
        assert cursor["delta_link"].startswith(f"{sandbox.url}/microsoft/v1.0/me/mailFolders/inbox/messages/delta?")
        assert outlook.poll(ctx, token, {}, cursor, before, before).items == []
        assert sandbox.post("/google/gmail/arrive").status_code == 303  # the sandbox's "Deliver a new email"
        arrived = sandbox.store.state.mailbox[0]
        found = outlook.poll(ctx, token, {}, cursor, before, before)
        assert found.items == ["AAMk-" + arrived["id"]] and not found.reset
        # The search narrows the new ids: the arrived email's sender matches, another sender does not.
        sender = arrived["from"].split("<")[-1].split("@")[0]
        assert outlook.poll(ctx, token, {"query": f"from:{sender}"}, cursor, before, before).items == found.items
        assert outlook.poll(ctx, token, {"query": "from:nobody-sends-this"}, cursor, before, before).items == []
        fields = outlook.item(ctx, token, {}, found.items[0])["email"]
        assert (fields["subject"], fields["body_text"]) == (arrived["subject"], arrived["body"])
        assert fields["from"].endswith(f"<{arrived['from'].split('<')[-1]}") and fields["snippet"]
        later = outlook.poll(ctx, token, {}, outlook.poll(ctx, token, {}, cursor, before, before).cursor,
                             before, before)
        assert later.items == []  # the delta link it kept starts after the delivered email
        forged = {"delta_link": f"{sandbox.url}/microsoft/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=7"}
        reset = outlook.poll(ctx, token, {}, forged, before, before)  # 410 syncStateNotFound: a fresh round
        assert reset.reset and reset.items == found.items
    finally:
        with sandbox.store.lock:
            sandbox.store.state.mailbox[:] = mailbox
            sandbox.store.state.history_id = history_id


def test_notion_authenticates_hapex_with_basic_and_revokes_its_shape(sandbox):
    from hapex.sandbox.others import NOTION_PAGE_ID

    tokens = connect(sandbox, "notion", [])
    appended = requests.patch(
        f"{sandbox.url}/notion/v1/blocks/{NOTION_PAGE_ID}/children", verify=sandbox.ca, timeout=10,
        json={"children": [{"type": "paragraph", "paragraph": {"rich_text": []}}]}, headers=bearer(tokens))
    assert appended.status_code == 200 and appended.json()["results"][0]["id"]
    outcome = oauth_client.revoke(sandbox.provider("notion"), sandbox.client("notion"), token=tokens.access_token,
                                  token_type_hint="access_token", verify=sandbox.ca)
    assert outcome is oauth_client.RevocationOutcome.REVOKED
    assert requests.patch(f"{sandbox.url}/notion/v1/blocks/{NOTION_PAGE_ID}/children", verify=sandbox.ca,
                          timeout=10, json={"children": []}, headers=bearer(tokens)).status_code == 401


def test_hubspot_creates_a_contact_once_per_email(sandbox):
    tokens = connect(sandbox, "hubspot", ["crm.objects.contacts.write"])
    email = f"lena-{secrets.token_hex(3)}@example.net"
    first = sandbox.post("/hubspot/crm/v3/objects/contacts", json={"properties": {"email": email}},
                         headers=bearer(tokens))
    assert first.status_code == 201 and first.json()["id"]
    assert sandbox.post("/hubspot/crm/v3/objects/contacts", json={"properties": {"email": email}},
                        headers=bearer(tokens)).status_code == 409
    assert sandbox.post("/hubspot/crm/v3/objects/contacts", json={"properties": {"email": "a@b.example"}},
                        headers={"Authorization": "Bearer forged"}).status_code == 401


def test_an_operators_own_outbound_ca_bundle_is_kept_beside_the_local_ca(tmp_path):
    own = tmp_path / "corporate-ca.pem"
    own.write_text("-----BEGIN CERTIFICATE-----\ncorporate\n-----END CERTIFICATE-----\n")
    env = local_environment(embedded_db_stub(), launcher(tmp_path, HAPEX_OUTBOUND_CA_BUNDLE=str(own)))
    bundle = Path(env["HAPEX_OUTBOUND_CA_BUNDLE"]).read_text()
    assert "corporate" in bundle and (tmp_path / "tls" / "ca.pem").read_text() in bundle


def test_the_sandbox_listens_on_this_machine_only_whatever_the_services_bind_to(tmp_path):
    """HAPEX_BIND_HOST=0.0.0.0 (the intake on a LAN) used to put the sandbox, which issues tokens to whoever
    consents and answers as Claude, on every interface too."""
    settings = launcher(tmp_path, HAPEX_BIND_HOST="0.0.0.0")  # noqa: S104
    env = local_environment(embedded_db_stub(), settings)
    sandbox_env = environment_for("sandbox", env)
    assert sandbox_env["HAPEX_BIND_HOST"] == "127.0.0.1"
    assert SandboxSettings.from_env(sandbox_env).bind.startswith("127.0.0.1:")
    with pytest.raises(ConfigError) as refused:
        SandboxSettings.from_env({**sandbox_env, "HAPEX_BIND_HOST": "0.0.0.0"})  # noqa: S104
    assert refused.value.variable == "HAPEX_BIND_HOST"
    assert SandboxSettings.from_env({**sandbox_env, "HAPEX_BIND_HOST": "::1"}).bind == "::1:8445"


def test_every_slack_channel_a_starter_names_exists_in_the_sandbox():
    from hapex.sandbox.state import CHANNELS
    from intake.automations.starters import STARTERS

    named = {step["input"]["channel"] for starter in STARTERS for step in starter.definition["steps"]
             if step["capability"] == "slack.post_message"}
    assert named and named <= {f"#{name}" for name in CHANNELS.values()}


def test_every_sandbox_page_links_every_slack_channel(sandbox):
    from hapex.sandbox.state import CHANNELS

    for path in ("/", "/google/gmail", "/slack/channels/general"):
        page = sandbox.get(path).text
        for name in CHANNELS.values():
            assert f'<a href="/slack/channels/{name}">Slack #{name}</a>' in page, (path, name)


def test_the_poll_sources_find_a_new_email_row_and_event_in_the_sandbox_and_read_their_fields(sandbox):
    from datetime import UTC, datetime, timedelta

    from agent_service.capabilities import LLMSettings, ProviderHTTP, StepContext
    from agent_service.polls.sources import SOURCES

    tokens = connect(sandbox, "google", [G + "gmail.readonly", G + "spreadsheets", G + "calendar.events"])
    http = ProviderHTTP(sandbox.provider("google"), verify=sandbox.ca)
    ctx = StepContext(client_id=uuid.uuid4(), run_id=uuid.uuid4(), step_index=0, http=http,
                      llm=LLMSettings(api_key=None), idempotency_key="poll:test")
    token, before = tokens.access_token, datetime.now(UTC) - timedelta(minutes=1)
    mailbox, rows = list(sandbox.store.state.mailbox), [list(r) for r in sandbox.store.state.sheet["rows"]]
    events, history_id = list(sandbox.store.state.events), sandbox.store.state.history_id
    contacts = list(sandbox.store.state.contacts)
    try:
        gmail = SOURCES["gmail.new_email"]
        cursor = gmail.prime(ctx, token, {"query": "in:inbox"})
        assert gmail.poll(ctx, token, {"query": "in:inbox"}, cursor, before, before).items == []
        assert sandbox.post("/google/gmail/arrive").status_code == 303
        found = gmail.poll(ctx, token, {"query": "in:inbox"}, cursor, before, before)
        assert len(found.items) == 1 and not found.reset
        fields = gmail.item(ctx, token, {}, found.items[0])["email"]
        assert fields["from"] and fields["subject"] and fields["body_text"]
        assert gmail.poll(ctx, token, {}, {"history_id": "7"}, before, before).reset  # 404: too old

        sheet = SOURCES["sheets.new_row"]
        options = {"spreadsheet_id": "sandbox-sheet-0001", "sheet": "Sheet1"}
        cursor = sheet.prime(ctx, token, options)
        sandbox.post("/google/v4/spreadsheets/sandbox-sheet-0001/values/Sheet1%21A1%3AD:append",
                     json={"values": [["2026-12-01", "Sam Keller", "Two loaves", "9.00"]]}, headers=bearer(tokens))
        found = sheet.poll(ctx, token, options, cursor, before, before)
        assert len(found.items) == 1
        assert sheet.item(ctx, token, options, found.items[0])["row"]["customer"] == "Sam Keller"

        calendar = SOURCES["calendar.new_event"]
        cursor = calendar.prime(ctx, token, {})
        sandbox.post("/google/calendar/v3/calendars/primary/events", headers=bearer(tokens), json={
            "summary": "Tasting", "start": {"dateTime": "2026-12-12T10:00:00Z"},
            "end": {"dateTime": "2026-12-12T11:00:00Z"}})
        found = calendar.poll(ctx, token, {}, cursor, before, before)
        assert len(found.items) == 1
        assert calendar.item(ctx, token, {}, found.items[0])["event"]["summary"] == "Tasting"
        assert calendar.poll(ctx, token, {}, {"sync_token": "forged"}, before, before).reset  # 410 Gone

        hub_tokens = connect(sandbox, "hubspot", ["crm.objects.contacts.read", "crm.objects.contacts.write"])
        hub_ctx = StepContext(client_id=uuid.uuid4(), run_id=uuid.uuid4(), step_index=0,
                              http=ProviderHTTP(sandbox.provider("hubspot"), verify=sandbox.ca),
                              llm=LLMSettings(api_key=None), idempotency_key="poll:test")
        hubspot = SOURCES["hubspot.new_contact"]
        primed_at = datetime.now(UTC)  # contacts an earlier test made are older than the state taken here
        cursor = hubspot.prime(hub_ctx, hub_tokens.access_token, {})
        made = sandbox.post("/hubspot/crm/v3/objects/contacts", headers=bearer(hub_tokens), json={
            "properties": {"email": "poll-test@example.com", "firstname": "Poll"}})
        assert made.status_code == 201
        found = hubspot.poll(hub_ctx, hub_tokens.access_token, {}, cursor, before, primed_at)
        assert found.items == [made.json()["id"]]
        fields = hubspot.item(hub_ctx, hub_tokens.access_token, {}, found.items[0])["contact"]
        assert (fields["email"], fields["first_name"]) == ("poll-test@example.com", "Poll")
    finally:
        with sandbox.store.lock:
            sandbox.store.state.mailbox[:] = mailbox
            sandbox.store.state.sheet["rows"] = rows
            sandbox.store.state.events[:] = events
            sandbox.store.state.history_id = history_id
            sandbox.store.state.contacts[:] = contacts
