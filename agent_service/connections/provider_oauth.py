"""Talking OAuth to providers: code exchange, refresh and revocation, with requests-oauthlib.

Only the agent does this; the client secret and every token stay in this process. Each
HTTP call passes `verify=` explicitly on a session that ignores the environment and verifies
with the bundle's one preloaded context (agent_service.outbound_tls), so REQUESTS_CA_BUNDLE
cannot widen whom we trust, and each has a timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from agent_service.outbound_tls import OutboundTLSAdapter, outbound_session
from shared.catalog import Provider, Revocation, TokenAuth, TokenRequest
from shared.errors import HapexError
from shared.secret import Secret

logger = logging.getLogger(__name__)

TIMEOUT = (5, 20)
SLACK_INVALID_GRANT = {"invalid_code", "code_already_used", "invalid_refresh_token", "token_revoked",
                       "token_expired", "invalid_grant"}


class ProviderError(HapexError):
    name = "provider_error"
    message = "The provider refused or failed the request."


class InvalidGrant(ProviderError):
    name = "invalid_grant"
    message = "The provider no longer accepts this authorization; the client must reconnect."


class TransientProviderError(ProviderError):
    name = "provider_transient"
    message = "The provider is unavailable or rate-limiting; try again later."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    name = "provider_rejected"
    message = "The provider rejected the request."


@dataclass(frozen=True)
class OAuthClient:
    """Hapex's registration at one provider: HAPEX_<KEY>_CLIENT_ID and _CLIENT_SECRET."""

    client_id: str
    client_secret: Secret


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint returned, secrets wrapped."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: datetime | None
    granted_scopes: tuple[str, ...] | None
    account_label: str | None = None


class RevocationOutcome(StrEnum):
    REVOKED = "revoked"
    ALREADY_INVALID = "already_invalid"
    RETRY_LATER = "retry_later"
    UNSUPPORTED = "unsupported"


def _session(provider: Provider, verify: str, **kwargs: Any) -> OAuth2Session:
    session = OAuth2Session(**kwargs)
    session.trust_env = False
    session.mount("https://", OutboundTLSAdapter(verify))
    session.register_compliance_hook("access_token_response", _check_token_response)
    session.register_compliance_hook("refresh_token_response", _check_token_response)
    if provider.token_request is TokenRequest.JSON:
        session.register_compliance_hook("access_token_request", _as_json_body)
    return session


def _as_json_body(url: str, headers: dict[str, str], request_kwargs: dict[str, Any]
                  ) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The same token request parameters as a JSON object, for a provider that documents JSON (Notion)."""
    parameters = request_kwargs.pop("data", {})
    return url, {**headers, "Content-Type": "application/json"}, {**request_kwargs, "json": parameters}


def _refresh_with_json(session: OAuth2Session, provider: Provider, client: OAuthClient, refresh_token: Secret,
                       verify: str) -> dict[str, Any]:
    """Notion's refresh (developers.notion.com/reference/refresh-a-token): JSON body, HTTP Basic client."""
    assert provider.token_url is not None
    response = session.post(
        provider.token_url,
        json={"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()},
        auth=HTTPBasicAuth(client.client_id, client.client_secret.reveal()),
        headers={"Accept": "application/json"}, timeout=TIMEOUT, verify=verify, withhold_token=True,
    )
    response = _check_token_response(response)
    return dict(session._client.parse_request_body_response(response.text))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _check_token_response(response: requests.Response) -> requests.Response:
    """Turn provider quirks into standard token responses or our errors (never their text)."""
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientProviderError(retry_after=_retry_after(response))
    try:
        body = response.json()
    except ValueError:
        raise ProviderRejected("The provider answered with something other than JSON.") from None
    if isinstance(body, dict) and body.get("ok") is False:  # Slack answers errors with 200
        error = "invalid_grant" if body.get("error") in SLACK_INVALID_GRANT else "invalid_request"
        response._content = json.dumps({"error": error}).encode()
    elif isinstance(body, dict) and isinstance(body.get("authed_user"), dict) and "access_token" not in body:
        response._content = json.dumps(body["authed_user"]).encode()
    return response


def _token_set(token: Mapping[str, Any]) -> TokenSet:
    expires_at = None
    if token.get("expires_at"):
        expires_at = datetime.fromtimestamp(float(token["expires_at"]), UTC)
    elif token.get("expires_in"):
        expires_at = datetime.now(UTC) + timedelta(seconds=float(token["expires_in"]))
    scope = token.get("scope")
    if isinstance(scope, list):
        granted: tuple[str, ...] | None = tuple(scope)
    elif isinstance(scope, str):
        granted = tuple(s for s in scope.replace(",", " ").split() if s)
    else:
        granted = None
    label = None
    for key in ("workspace_name", "team_name"):
        if isinstance(token.get(key), str):
            label = token[key]
    if isinstance(token.get("team"), dict) and isinstance(token["team"].get("name"), str):
        label = token["team"]["name"]
    refresh = token.get("refresh_token")
    return TokenSet(
        access_token=Secret(str(token["access_token"])),
        refresh_token=Secret(str(refresh)) if refresh else None,
        expires_at=expires_at,
        granted_scopes=granted,
        account_label=label,
    )


def _auth_kwargs(provider: Provider, client: OAuthClient) -> dict[str, Any]:
    if provider.token_auth is TokenAuth.BASIC:
        return {"auth": HTTPBasicAuth(client.client_id, client.client_secret.reveal()),
                "include_client_id": False}
    return {"client_secret": client.client_secret.reveal(), "include_client_id": True}


def exchange_code(provider: Provider, client: OAuthClient, *, code: Secret, code_verifier: Secret,
                  redirect_uri: str, verify: str) -> TokenSet:
    """Trade an authorization code (and its PKCE verifier) for tokens."""
    session = _session(provider, verify, client_id=client.client_id, redirect_uri=redirect_uri)
    try:
        token = session.fetch_token(
            provider.token_url,
            code=code.reveal(),
            code_verifier=code_verifier.reveal(),
            timeout=TIMEOUT,
            verify=verify,
            **_auth_kwargs(provider, client),
        )
    except InvalidGrantError:
        raise InvalidGrant() from None
    except OAuth2Error as exc:
        raise ProviderRejected(f"The provider refused the exchange ({exc.error}).") from None
    except requests.RequestException:
        raise TransientProviderError() from None
    return _token_set(token)


def refresh_access_token(provider: Provider, client: OAuthClient, *, refresh_token: Secret,
                         verify: str) -> TokenSet:
    """A fresh access token; the refresh token too if the provider rotates it."""
    session = _session(provider, verify, client_id=client.client_id)
    extra: dict[str, Any] = {}
    if provider.token_auth is TokenAuth.BASIC:
        extra["auth"] = HTTPBasicAuth(client.client_id, client.client_secret.reveal())
    else:
        extra["client_id"] = client.client_id
        extra["client_secret"] = client.client_secret.reveal()
    try:
        if provider.token_request is TokenRequest.JSON:
            token = _refresh_with_json(session, provider, client, refresh_token, verify)
        else:
            token = session.refresh_token(
                provider.token_url, refresh_token=refresh_token.reveal(), timeout=TIMEOUT, verify=verify, **extra
            )
    except InvalidGrantError:
        raise InvalidGrant() from None
    except OAuth2Error as exc:
        raise ProviderRejected(f"The provider refused the refresh ({exc.error}).") from None
    except requests.RequestException:
        raise TransientProviderError() from None
    tokens = _token_set(token)
    if tokens.refresh_token is not None and tokens.refresh_token.reveal() == refresh_token.reveal():
        # requests-oauthlib copies the old refresh token in when none came back.
        tokens = TokenSet(tokens.access_token, None, tokens.expires_at, tokens.granted_scopes, tokens.account_label)
    return tokens


def revoke(provider: Provider, client: OAuthClient | None, *, token: Secret, token_type_hint: str,
           verify: str) -> RevocationOutcome:
    """Ask the provider to forget a token, authenticating as at its token endpoint (RFC 7009 2.1).

    Only success, or the answer the provider documents for a token it does not know, counts as
    revoked; a refused client authentication (401 invalid_client), a 5xx or anything else is a
    revocation that did not happen, to be retried.
    """
    if provider.revocation is Revocation.NONE or not provider.revocation_url:
        return RevocationOutcome.UNSUPPORTED
    if client is None and provider.revocation is not Revocation.SLACK:
        # Without Hapex's client secret the provider cannot accept the request (RFC 7009 2.1).
        logger.warning("revocation not attempted: no OAuth client configured", extra={"provider": provider.key})
        return RevocationOutcome.RETRY_LATER
    session = outbound_session(verify)
    value = token.reveal()
    try:
        if provider.revocation is Revocation.SLACK:
            response = session.post(provider.revocation_url, headers={"Authorization": f"Bearer {value}"},
                                    timeout=TIMEOUT, verify=verify)
        else:
            assert client is not None
            secret = client.client_secret.reveal()
            basic = HTTPBasicAuth(client.client_id, secret) if provider.token_auth is TokenAuth.BASIC else None
            if provider.revocation is Revocation.NOTION:
                response = session.post(provider.revocation_url, json={"token": value}, auth=basic,
                                        headers=dict(provider.api_headers), timeout=TIMEOUT, verify=verify)
            else:  # Revocation.RFC7009
                data = {"token": value, "token_type_hint": token_type_hint}
                if basic is None:
                    data |= {"client_id": client.client_id, "client_secret": secret}
                response = session.post(provider.revocation_url, data=data, auth=basic, timeout=TIMEOUT,
                                        verify=verify)
    except requests.RequestException:
        return RevocationOutcome.RETRY_LATER
    finally:
        del value
    outcome = _revocation_outcome(provider, response)
    if outcome is RevocationOutcome.RETRY_LATER:
        logger.warning("revocation not confirmed by the provider",
                       extra={"provider": provider.key, "status": response.status_code})
    return outcome


def _error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("error")
    return code if isinstance(code, str) else None


def _revocation_outcome(provider: Provider, response: requests.Response) -> RevocationOutcome:
    if provider.revocation is Revocation.SLACK and response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            return RevocationOutcome.RETRY_LATER
        if isinstance(body, dict) and body.get("ok") is True:
            return RevocationOutcome.REVOKED
        if _error_code(response) in provider.revocation_token_unknown:
            return RevocationOutcome.ALREADY_INVALID
        return RevocationOutcome.RETRY_LATER
    if response.status_code in (200, 204):
        return RevocationOutcome.REVOKED
    if response.status_code == 400 and _error_code(response) in provider.revocation_token_unknown:
        return RevocationOutcome.ALREADY_INVALID
    return RevocationOutcome.RETRY_LATER
