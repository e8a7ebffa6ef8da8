"""OAuth consent, intake side: the authorization URL out, the callback checked on the way back.

Authorization-code flow with PKCE S256, single-use state, and issuer checks (RFC 9207). The
intake never sees a token: a checked callback yields the code and PKCE verifier, which are
forwarded to the agent service for the exchange.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oauthlib.oauth2 import WebApplicationClient

from shared.catalog import AuthKind, Provider
from shared.db import Database, QuerySet, execute, fetch_optional, tenant_transaction
from shared.db.pool import Connection
from shared.errors import HapexError
from shared.secret import Secret

QUERIES = QuerySet(Path(__file__).with_name("consent.sql"))
STATE_LIFETIME_SECONDS = 600


class ConsentRefused(HapexError):
    name = "consent_refused"
    status = 400
    message = "This authorization response cannot be accepted; start the connection again."

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message)


class ProviderDeclined(ConsentRefused):
    name = "consent_declined"
    message = "The provider reported that access was not granted."


@dataclass(frozen=True)
class ConsentStart:
    authorization_url: str
    state: str


@dataclass(frozen=True)
class AcceptedCallback:
    """What the agent needs to exchange the code; the verifier is a Secret."""

    provider: str
    code: Secret
    code_verifier: Secret
    redirect_uri: str
    requested_scopes: tuple[str, ...]
    connection_id: uuid.UUID | None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode("utf-8")).digest()


def pkce_verifier(key: Secret, state: str) -> str:
    """A 43-character RFC 7636 verifier derived from the state, so none is stored."""
    raw = key.reveal()
    raw = raw.encode() if isinstance(raw, str) else raw
    return _b64url(hmac.new(raw, b"hapex-pkce\x00" + state.encode("utf-8"), hashlib.sha256).digest())


def pkce_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def scope_parameter(provider: Provider, scopes: Sequence[str]) -> str:
    return provider.scope_separator.join([*provider.base_scopes, *scopes])


def start_consent(
    conn: Connection,
    *,
    client_id: uuid.UUID,
    session_hash: bytes,
    provider: Provider,
    client_id_at_provider: str,
    redirect_uri: str,
    scopes: Sequence[str],
    pkce_key: Secret,
    connection_id: uuid.UUID | None = None,
) -> ConsentStart:
    """Record a single-use state and build the provider's authorization URL."""
    if provider.auth_kind is not AuthKind.OAUTH2 or not provider.authorization_url:
        raise ValueError(f"{provider.key} does not use OAuth consent")
    state = secrets.token_urlsafe(32)
    execute(
        conn,
        QUERIES["insert_state"],
        client_id=client_id,
        state_hash=state_hash(state),
        session_hash=session_hash,
        provider=provider.key,
        connection_id=connection_id,
        requested_scopes=list(scopes),
        redirect_uri=redirect_uri,
        issuer=provider.issuer,
        lifetime_seconds=STATE_LIFETIME_SECONDS,
    )
    oauth_client = WebApplicationClient(client_id_at_provider)
    extra = dict(provider.authorization_params)
    url = oauth_client.prepare_request_uri(
        provider.authorization_url,
        redirect_uri=redirect_uri,
        scope=scope_parameter(provider, scopes) or None,
        state=state,
        code_challenge=pkce_challenge(pkce_verifier(pkce_key, state)),
        code_challenge_method="S256",
        **extra,
    )
    return ConsentStart(authorization_url=url, state=state)


def accept_callback(
    db: Database,
    *,
    client_id: uuid.UUID,
    provider: Provider,
    session_hash: bytes,
    params: Mapping[str, str],
    pkce_key: Secret,
) -> AcceptedCallback:
    """Check a callback against its pending request; the state is consumed whatever the outcome."""
    state = params.get("state") or ""
    if not state or len(state) > 200:
        raise ConsentRefused("missing_state")
    with tenant_transaction(db, client_id) as conn:
        pending = fetch_optional(conn, QUERIES["take_state"], state_hash=state_hash(state))
    # The transaction has committed: a refused state is gone too and cannot be replayed.
    if pending is None:
        raise ConsentRefused("unknown_state")
    if not hmac.compare_digest(bytes(pending["session_hash"]), session_hash):
        raise ConsentRefused("other_session")
    if pending["provider"] != provider.key:
        raise ConsentRefused("other_provider")
    if not pending["fresh"]:
        raise ConsentRefused("expired_state")
    issuer = params.get("iss")
    expected = pending["issuer"] or provider.issuer
    if issuer is None and provider.sends_issuer:
        # RFC 9207 2.4: from an issuer known to send `iss`, a response without it is refused like a wrong one.
        raise ConsentRefused("missing_issuer")
    if issuer is not None and issuer != expected:
        raise ConsentRefused("wrong_issuer")
    if params.get("error"):
        raise ProviderDeclined("provider_error")
    code = params.get("code") or ""
    if not code or len(code) > 2048:
        raise ConsentRefused("missing_code")
    return AcceptedCallback(
        provider=provider.key,
        code=Secret(code),
        code_verifier=Secret(pkce_verifier(pkce_key, state)),
        redirect_uri=pending["redirect_uri"],
        requested_scopes=tuple(pending["requested_scopes"]),
        connection_id=pending["connection_id"],
    )
