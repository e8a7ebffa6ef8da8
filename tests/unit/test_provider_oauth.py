"""Code exchange, refresh and revocation against stand-ins shaped like the providers' endpoints."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import parse_qs

import pytest
import responses

from agent_service.connections.provider_oauth import (
    InvalidGrant,
    OAuthClient,
    ProviderRejected,
    RevocationOutcome,
    TransientProviderError,
    exchange_code,
    refresh_access_token,
    revoke,
)
from shared.catalog import PROVIDERS, get_provider
from shared.secret import Secret

CLIENT = OAuthClient("client-123", Secret("client-secret-canary"))
BASIC = base64.b64encode(b"client-123:client-secret-canary").decode()
VERIFY = "/nonexistent/ca.pem"  # responses never opens it; asserts we pass it through
G = "https://www.googleapis.com/auth/"


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


@responses.activate
def test_a_google_code_exchange_sends_the_verifier_and_reads_scopes_and_expiry():
    responses.post(
        "https://oauth2.googleapis.com/token",
        json={"access_token": "ya29.access-canary", "refresh_token": "1//refresh-canary", "expires_in": 3599,
              "scope": G + "gmail.readonly", "token_type": "Bearer"},
    )
    tokens = exchange_code(get_provider("google"), CLIENT, code=Secret("4/code"), code_verifier=Secret("v" * 43),
                           redirect_uri="https://hapex.test/cb", verify=VERIFY)
    sent = form(responses.calls[0])
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "4/code" and sent["code_verifier"] == "v" * 43
    assert sent["client_id"] == "client-123" and sent["client_secret"] == "client-secret-canary"
    assert sent["redirect_uri"] == "https://hapex.test/cb"
    assert responses.calls[0].request.req_kwargs["verify"] == VERIFY
    assert tokens.access_token.reveal() == "ya29.access-canary"
    assert tokens.refresh_token.reveal() == "1//refresh-canary"
    assert tokens.granted_scopes == (G + "gmail.readonly",)
    assert tokens.expires_at is not None


@responses.activate
def test_notion_authenticates_with_http_basic():
    responses.post("https://api.notion.com/v1/oauth/token",
                   json={"access_token": "secret_notion", "token_type": "bearer", "workspace_name": "Acme"})
    tokens = exchange_code(get_provider("notion"), CLIENT, code=Secret("c"), code_verifier=Secret("v" * 43),
                           redirect_uri="https://hapex.test/cb", verify=VERIFY)
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + BASIC
    # developers.notion.com/reference/create-a-token: a JSON body, the client in the Basic header only.
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.body)
    assert sent["grant_type"] == "authorization_code" and sent["code"] == "c"
    assert sent["redirect_uri"] == "https://hapex.test/cb"
    assert "client_secret" not in sent and "client_id" not in sent
    assert tokens.account_label == "Acme" and tokens.refresh_token is None


@responses.activate
def test_notion_refreshes_with_a_json_body_and_http_basic():
    responses.post("https://api.notion.com/v1/oauth/token",
                   json={"access_token": "ntn_new", "token_type": "bearer", "refresh_token": "nrt_new"})
    tokens = refresh_access_token(get_provider("notion"), CLIENT, refresh_token=Secret("nrt_old"), verify=VERIFY)
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + BASIC
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"grant_type": "refresh_token", "refresh_token": "nrt_old"}
    assert tokens.refresh_token.reveal() == "nrt_new"


@responses.activate
@pytest.mark.parametrize("provider", ["google", "hubspot"])
def test_rfc7009_revocation_authenticates_the_client_as_the_token_endpoint_does(provider):
    responses.post(get_provider(provider).revocation_url, status=200)
    assert revoke(get_provider(provider), CLIENT, token=Secret("tok-canary"), token_type_hint="refresh_token",
                  verify=VERIFY) is RevocationOutcome.REVOKED
    sent = form(responses.calls[0])
    assert sent == {"token": "tok-canary", "token_type_hint": "refresh_token", "client_id": "client-123",
                    "client_secret": "client-secret-canary"}


@responses.activate
def test_notion_revocation_sends_json_with_http_basic_and_the_api_version():
    responses.post("https://api.notion.com/v1/oauth/revoke", json={"request_id": "x"})
    assert revoke(get_provider("notion"), CLIENT, token=Secret("ntn_canary"), token_type_hint="access_token",
                  verify=VERIFY) is RevocationOutcome.REVOKED
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + BASIC
    assert request.headers["Notion-Version"] == "2022-06-28"
    assert json.loads(request.body) == {"token": "ntn_canary"}


@responses.activate
@pytest.mark.parametrize(("provider", "status", "body"), [
    ("google", 401, {"error": "invalid_client"}),
    ("google", 400, {"error": "invalid_request"}),
    ("google", 500, {}),
    ("google", 404, {}),
    ("hubspot", 401, {"error": "invalid_client"}),
    ("hubspot", 400, {"category": "VALIDATION_ERROR"}),
    ("notion", 401, {"object": "error", "code": "unauthorized"}),
    ("notion", 502, {}),
    ("slack", 200, {"ok": False, "error": "ratelimited"}),
])
def test_a_refused_client_or_a_failing_provider_is_a_revocation_that_did_not_happen(provider, status, body):
    responses.post(get_provider(provider).revocation_url, status=status, json=body)
    assert revoke(get_provider(provider), CLIENT, token=Secret("tok"), token_type_hint="refresh_token",
                  verify=VERIFY) is RevocationOutcome.RETRY_LATER


def test_without_a_client_secret_no_authenticated_revocation_is_attempted():
    with responses.RequestsMock() as mock:
        assert revoke(get_provider("google"), None, token=Secret("t"), token_type_hint="refresh_token",
                      verify=VERIFY) is RevocationOutcome.RETRY_LATER
        assert len(mock.calls) == 0


@responses.activate
def test_slack_exchanges_a_code_with_http_basic_as_its_reference_asks():
    responses.post("https://slack.com/api/oauth.v2.access",
                   json={"ok": True, "access_token": "xoxb-canary", "token_type": "bot", "scope": "chat:write"})
    exchange_code(get_provider("slack"), CLIENT, code=Secret("c"), code_verifier=Secret("v" * 43),
                  redirect_uri="https://hapex.test/cb", verify=VERIFY)
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + BASIC
    sent = form(responses.calls[0])
    assert sent["grant_type"] == "authorization_code" and sent["code"] == "c" and sent["code_verifier"] == "v" * 43
    assert "client_secret" not in sent


@responses.activate
def test_slack_errors_answered_with_200_become_invalid_grant():
    responses.post("https://slack.com/api/oauth.v2.access", json={"ok": False, "error": "invalid_code"})
    with pytest.raises(InvalidGrant):
        exchange_code(get_provider("slack"), CLIENT, code=Secret("c"), code_verifier=Secret("v" * 43),
                      redirect_uri="https://hapex.test/cb", verify=VERIFY)


@responses.activate
def test_slack_bot_tokens_with_rotation_are_read():
    responses.post("https://slack.com/api/oauth.v2.access",
                   json={"ok": True, "access_token": "xoxb-canary", "token_type": "bot", "scope": "chat:write",
                         "refresh_token": "xoxe-1-canary", "expires_in": 43200, "team": {"name": "Acme HQ"}})
    tokens = exchange_code(get_provider("slack"), CLIENT, code=Secret("c"), code_verifier=Secret("v" * 43),
                           redirect_uri="https://hapex.test/cb", verify=VERIFY)
    assert tokens.granted_scopes == ("chat:write",)
    assert tokens.account_label == "Acme HQ"
    assert tokens.refresh_token.reveal() == "xoxe-1-canary"


@responses.activate
@pytest.mark.parametrize(("status", "headers"), [(503, {}), (429, {"Retry-After": "7"})])
def test_a_busy_or_failing_token_endpoint_is_transient(status, headers):
    responses.post("https://oauth2.googleapis.com/token", status=status, headers=headers, body="<html>busy</html>")
    with pytest.raises(TransientProviderError) as raised:
        refresh_access_token(get_provider("google"), CLIENT, refresh_token=Secret("1//r"), verify=VERIFY)
    assert raised.value.retry_after == (7.0 if headers else None)


@responses.activate
def test_invalid_grant_on_refresh_is_reported_as_such():
    responses.post("https://oauth2.googleapis.com/token", status=400,
                   json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    with pytest.raises(InvalidGrant):
        refresh_access_token(get_provider("google"), CLIENT, refresh_token=Secret("1//r"), verify=VERIFY)


@responses.activate
def test_a_rotated_refresh_token_is_returned_and_an_unrotated_one_is_not_repeated():
    provider = get_provider("google")
    responses.post("https://oauth2.googleapis.com/token",
                   json={"access_token": "a2", "refresh_token": "1//rotated", "expires_in": 3600,
                         "token_type": "Bearer"})
    rotated = refresh_access_token(provider, CLIENT, refresh_token=Secret("1//old"), verify=VERIFY)
    assert rotated.refresh_token.reveal() == "1//rotated"
    assert form(responses.calls[0])["grant_type"] == "refresh_token"
    responses.replace(responses.POST, "https://oauth2.googleapis.com/token",
                      json={"access_token": "a3", "expires_in": 3600, "token_type": "Bearer"})
    kept = refresh_access_token(provider, CLIENT, refresh_token=Secret("1//old"), verify=VERIFY)
    assert kept.refresh_token is None and kept.access_token.reveal() == "a3"


@responses.activate
def test_an_error_page_instead_of_json_is_a_clean_refusal():
    responses.post("https://oauth2.googleapis.com/token", status=400, body="<html>nope</html>")
    with pytest.raises(ProviderRejected):
        refresh_access_token(get_provider("google"), CLIENT, refresh_token=Secret("1//r"), verify=VERIFY)


@responses.activate
@pytest.mark.parametrize(
    ("provider", "method", "url", "status", "body", "outcome"),
    [
        ("google", "POST", "https://oauth2.googleapis.com/revoke", 200, {}, RevocationOutcome.REVOKED),
        ("google", "POST", "https://oauth2.googleapis.com/revoke", 400, {"error": "invalid_token"},
         RevocationOutcome.ALREADY_INVALID),
        ("google", "POST", "https://oauth2.googleapis.com/revoke", 503, {}, RevocationOutcome.RETRY_LATER),
        ("slack", "POST", "https://slack.com/api/auth.revoke", 200, {"ok": True, "revoked": True},
         RevocationOutcome.REVOKED),
        ("slack", "POST", "https://slack.com/api/auth.revoke", 200, {"ok": False, "error": "token_revoked"},
         RevocationOutcome.ALREADY_INVALID),
        # Slack answers invalid_auth for a disallowed IP address too: not proof the token is gone.
        ("slack", "POST", "https://slack.com/api/auth.revoke", 200, {"ok": False, "error": "invalid_auth"},
         RevocationOutcome.RETRY_LATER),
        ("hubspot", "POST", "https://api.hubapi.com/oauth/2026-03/token/revoke", 204, None,
         RevocationOutcome.REVOKED),
        ("notion", "POST", "https://api.notion.com/v1/oauth/revoke", 200, {"request_id": "x"},
         RevocationOutcome.REVOKED),
    ],
)
def test_revocation_speaks_each_providers_dialect(provider, method, url, status, body, outcome):
    responses.add(method, url, status=status, json=body)
    result = revoke(get_provider(provider), CLIENT, token=Secret("tok-canary"), token_type_hint="refresh_token",
                    verify=VERIFY)
    assert result is outcome
    assert len(responses.calls) == 1


def test_a_provider_without_revocation_says_so_without_calling_anyone():
    with responses.RequestsMock() as mock:
        result = revoke(get_provider("microsoft"), CLIENT, token=Secret("t"), token_type_hint="refresh_token",
                        verify=VERIFY)
        assert len(mock.calls) == 0
    assert result is RevocationOutcome.UNSUPPORTED


def test_oauth_clients_come_from_the_environment_and_need_both_halves():
    from agent_service.config import oauth_clients
    from shared.config import Environment, resolve_catalog

    env = Environment({
        "HAPEX_GOOGLE_CLIENT_ID": "g-id", "HAPEX_GOOGLE_CLIENT_SECRET": "g-secret", "HAPEX_SLACK_CLIENT_ID": "s-id",
    })
    clients = oauth_clients(env, resolve_catalog(env, PROVIDERS))
    assert set(clients) == {"google"}
    assert "g-secret" not in repr(clients)


@responses.activate
def test_no_token_or_secret_reaches_the_logs_even_at_debug(caplog):
    responses.post("https://oauth2.googleapis.com/token",
                   json={"access_token": "ya29.canary-access", "refresh_token": "1//canary-refresh",
                         "expires_in": 3600, "token_type": "Bearer"})
    from shared.structured_logging import clamp_noisy_loggers

    with caplog.at_level(logging.DEBUG):
        clamp_noisy_loggers()
        exchange_code(get_provider("google"), CLIENT, code=Secret("4/canary-code"),
                      code_verifier=Secret("v" * 43), redirect_uri="https://hapex.test/cb", verify=VERIFY)
    text = caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    for canary in ("canary-access", "canary-refresh", "canary-code", "client-secret-canary"):
        assert canary not in text
