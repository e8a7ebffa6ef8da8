"""Connecting, reconnecting and disconnecting a provider, as the agent does it.

Tokens are exchanged before any transaction opens (no row lock is held while a provider
answers); what they grant is then stored in one tenant transaction: the connection's state
and its encrypted credentials together, or neither.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_service.connections import repository
from agent_service.connections.provider_oauth import (
    OAuthClient,
    RevocationOutcome,
    TokenSet,
    exchange_code,
    revoke,
)
from agent_service.queue import defer
from agent_service.vault import Accessor, CredentialNotFound, CredentialUnreadable, Purpose, Vault
from shared.catalog import CAPABILITIES, POLL_TRIGGERS, AuthKind, Provider, Revocation
from shared.db import Database, QuerySet, execute, fetch_all, fetch_one, fetch_optional, tenant_transaction
from shared.db.pool import Connection
from shared.errors import NotFound
from shared.secret import Secret

logger = logging.getLogger(__name__)

QUERIES = QuerySet(Path(__file__).with_name("lifecycle.sql"))
REVOCATION_PENDING = "revocation_pending"
# Retries ran out without the provider confirming: the client must remove Hapex at the provider.
REVOCATION_UNCONFIRMED = "revocation_unconfirmed"
# The grant was ended at the client's request so that a narrower consent can replace it.
ACCESS_REDUCED = "access_reduced"


class ConnectionMissing(NotFound):
    """This client has no such connection for that provider."""

    message = "No such connection."


@dataclass(frozen=True)
class Connected:
    connection: dict[str, Any]
    missing_scopes: tuple[str, ...]


def _granted(tokens: TokenSet, requested: tuple[str, ...]) -> tuple[str, ...]:
    # RFC 6749 5.1: a response without `scope` granted exactly what was asked.
    granted = tokens.granted_scopes if tokens.granted_scopes is not None else requested
    return tuple(sorted(set(granted)))


def connect_oauth(
    db: Database,
    vault: Vault,
    *,
    client_id: uuid.UUID,
    provider: Provider,
    oauth_client: OAuthClient,
    code: Secret,
    code_verifier: Secret,
    redirect_uri: str,
    requested_scopes: tuple[str, ...],
    connection_id: uuid.UUID | None,
    verify: str,
) -> Connected:
    """Exchange the code, then save the connection and its encrypted tokens together."""
    if connection_id is not None:
        with tenant_transaction(db, client_id) as conn:
            _locked_connection(conn, connection_id, provider.key)
    tokens = exchange_code(
        provider, oauth_client, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri, verify=verify
    )
    granted = _granted(tokens, requested_scopes)
    with tenant_transaction(db, client_id) as conn:
        if connection_id is None:
            connection_id = fetch_one(
                conn,
                QUERIES["insert_connection"],
                client_id=client_id,
                provider=provider.key,
                auth_kind=AuthKind.OAUTH2.value,
                scopes=list(granted),
                account_label=tokens.account_label,
                secret_hint=None,
                expires_at=tokens.expires_at,
            )["connection_id"]
        else:
            _locked_connection(conn, connection_id, provider.key)
            execute(
                conn,
                QUERIES["reconnect"],
                connection_id=connection_id,
                scopes=list(granted),
                account_label=tokens.account_label,
                expires_at=tokens.expires_at,
            )
        vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.ACCESS_TOKEN,
                    secret=tokens.access_token)
        if tokens.refresh_token is not None:
            vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.REFRESH_TOKEN,
                        secret=tokens.refresh_token)
        else:
            # A renewed grant that came without a refresh token: the old one belongs to the grant
            # being replaced and is not kept beside the new access token.
            execute(conn, QUERIES["delete_credential"], connection_id=connection_id,
                    purpose=Purpose.REFRESH_TOKEN.value)
        row = repository.get_connection(conn, connection_id=connection_id)
    missing = tuple(sorted(set(requested_scopes) - set(granted)))
    logger.info("connection authorised", extra={"client_id": client_id, "connection_id": connection_id,
                                                "provider": provider.key, "count": len(granted)})
    return Connected(row, missing)


def connect_api_key(db: Database, vault: Vault, *, client_id: uuid.UUID, provider: Provider, api_key: Secret,
                    label: str | None) -> dict[str, Any]:
    """Store an API key encrypted; only its last four characters are kept in the clear."""
    with tenant_transaction(db, client_id) as conn:
        connection_id = fetch_one(
            conn,
            QUERIES["insert_connection"],
            client_id=client_id,
            provider=provider.key,
            auth_kind=AuthKind.API_KEY.value,
            scopes=[],
            account_label=label,
            secret_hint=api_key.last4() or None,
            expires_at=None,
        )["connection_id"]
        vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.API_KEY, secret=api_key)
        return repository.get_connection(conn, connection_id=connection_id)


def _locked_connection(conn: Connection, connection_id: uuid.UUID, provider_key: str | None) -> dict[str, Any]:
    row = fetch_optional(conn, QUERIES["lock_connection_for_update"], connection_id=connection_id)
    if row is None or (provider_key is not None and row["provider"] != provider_key):
        raise ConnectionMissing()
    return row


def capabilities_of(provider_key: str) -> list[str]:
    return sorted(key for key, capability in CAPABILITIES.items() if capability.provider == provider_key)


def pause_dependents(conn: Connection, provider: Provider, reason: str | None = None) -> list[dict[str, Any]]:
    """Pause the client's enabled automations that use this provider; the ids paused."""
    return fetch_all(conn, QUERIES["pause_automations_using"], capabilities=capabilities_of(provider.key),
                     poll_sources=sorted(k for k, t in POLL_TRIGGERS.items() if t.provider == provider.key),
                     reason=reason or f"{provider.name} needs to be reconnected.")


def _revocation_purpose(provider: Provider, purposes: set[str]) -> Purpose | None:
    """Which stored token to hand the provider's revocation call."""
    order = [Purpose.ACCESS_TOKEN, Purpose.REFRESH_TOKEN]
    if provider.revocation is Revocation.RFC7009:
        order.reverse()  # revoking the refresh token ends the whole grant
    for purpose in order:
        if purpose.value in purposes:
            return purpose
    return None


def disconnect(db: Database, vault: Vault, *, client_id: uuid.UUID, connection_id: uuid.UUID,
               provider: Provider, oauth_client: OAuthClient | None, verify: str) -> RevocationOutcome:
    """Revoke at the provider, then forget the ciphertext; pause what needed the connection.

    When the provider cannot be reached, the connection is disconnected for the client all
    the same, and only the credentials stay, for the retry job to revoke and then delete.
    """
    with tenant_transaction(db, client_id) as conn:
        _locked_connection(conn, connection_id, provider.key)
        purposes = {row["purpose"] for row in fetch_all(conn, QUERIES["credential_purposes"],
                                                        connection_id=connection_id)}
    outcome = RevocationOutcome.UNSUPPORTED
    purpose = _revocation_purpose(provider, purposes) if provider.auth_kind is AuthKind.OAUTH2 else None
    if purpose is not None:
        try:
            with vault.open_for_step(client_id=client_id, connection_id=connection_id, purpose=purpose,
                                     accessor=Accessor("agent", reason="revocation")) as token:
                outcome = revoke(provider, oauth_client, token=token, token_type_hint=purpose.value, verify=verify)
        except (CredentialNotFound, CredentialUnreadable):
            outcome = RevocationOutcome.ALREADY_INVALID
    pending = outcome is RevocationOutcome.RETRY_LATER
    with tenant_transaction(db, client_id) as conn:
        _locked_connection(conn, connection_id, provider.key)
        if pending:
            defer(conn, "finish_revocation", queue="maintenance", lock=f"revoke:{connection_id}",
                  args={"client_id": client_id, "connection_id": connection_id, "provider": provider.key})
        else:
            execute(conn, QUERIES["delete_credentials"], connection_id=connection_id)
        execute(conn, QUERIES["mark_revoked"], connection_id=connection_id,
                reason=REVOCATION_PENDING if pending else None)
        paused = pause_dependents(conn, provider, f"{provider.name} was disconnected; reconnect it to resume.")
    logger.info("connection disconnected", extra={"client_id": client_id, "connection_id": connection_id,
                                                 "provider": provider.key, "status": outcome.value,
                                                 "count": len(paused)})
    return outcome


def end_grant_to_narrow(db: Database, vault: Vault, *, client_id: uuid.UUID, connection_id: uuid.UUID,
                        provider: Provider, oauth_client: OAuthClient | None, verify: str) -> RevocationOutcome:
    """End the provider's grant so that a consent asking less replaces it, not merges with it.

    Google's incremental authorization (and any provider's remembered consent) would otherwise
    keep an unused write scope alive behind a narrower token. Only when the provider confirms
    (revoked, or the token is one it no longer knows) are the credentials deleted and the
    connection left pending the new consent; otherwise nothing changes and the outcome says why.
    """
    with tenant_transaction(db, client_id) as conn:
        row = _locked_connection(conn, connection_id, provider.key)
        purposes = {r["purpose"] for r in fetch_all(conn, QUERIES["credential_purposes"],
                                                    connection_id=connection_id)}
    if row["status"] == "revoked" or provider.auth_kind is not AuthKind.OAUTH2:
        raise ConnectionMissing()
    purpose = _revocation_purpose(provider, purposes)
    if purpose is None:
        outcome = RevocationOutcome.ALREADY_INVALID
    else:
        try:
            with vault.open_for_step(client_id=client_id, connection_id=connection_id, purpose=purpose,
                                     accessor=Accessor("agent", reason="revocation")) as token:
                outcome = revoke(provider, oauth_client, token=token, token_type_hint=purpose.value, verify=verify)
        except (CredentialNotFound, CredentialUnreadable):
            outcome = RevocationOutcome.ALREADY_INVALID
    if outcome in (RevocationOutcome.REVOKED, RevocationOutcome.ALREADY_INVALID):
        with tenant_transaction(db, client_id) as conn:
            _locked_connection(conn, connection_id, provider.key)
            execute(conn, QUERIES["delete_credentials"], connection_id=connection_id)
            execute(conn, QUERIES["mark_access_reduced"], connection_id=connection_id)
    logger.info("grant ended to narrow it", extra={"client_id": client_id, "connection_id": connection_id,
                                                  "provider": provider.key, "status": outcome.value})
    return outcome


def finish_pending_revocation(db: Database, vault: Vault, *, client_id: uuid.UUID, connection_id: uuid.UUID,
                              provider: Provider, oauth_client: OAuthClient | None, verify: str,
                              give_up: bool) -> RevocationOutcome:
    """Retry a revocation the provider could not take earlier; delete the ciphertext once done."""
    with tenant_transaction(db, client_id) as conn:
        row = fetch_optional(conn, QUERIES["lock_connection_for_update"], connection_id=connection_id)
        if row is None:
            # The client deleted its account meanwhile; the cascade took the ciphertext.
            return RevocationOutcome.ALREADY_INVALID
        purposes = {r["purpose"] for r in fetch_all(conn, QUERIES["credential_purposes"],
                                                    connection_id=connection_id)}
    if row["status"] != "revoked" or not purposes:
        return RevocationOutcome.REVOKED
    outcome = RevocationOutcome.ALREADY_INVALID
    purpose = _revocation_purpose(provider, purposes)
    if purpose is not None:
        try:
            with vault.open_for_step(client_id=client_id, connection_id=connection_id, purpose=purpose,
                                     accessor=Accessor("worker", reason="revocation")) as token:
                outcome = revoke(provider, oauth_client, token=token, token_type_hint=purpose.value, verify=verify)
        except (CredentialNotFound, CredentialUnreadable):
            outcome = RevocationOutcome.ALREADY_INVALID
    if outcome is RevocationOutcome.RETRY_LATER and not give_up:
        return outcome
    unconfirmed = outcome is RevocationOutcome.RETRY_LATER
    with tenant_transaction(db, client_id) as conn:
        execute(conn, QUERIES["delete_credentials"], connection_id=connection_id)
        execute(conn, QUERIES["mark_revoked"], connection_id=connection_id,
                reason=REVOCATION_UNCONFIRMED if unconfirmed else None)
    if unconfirmed:
        logger.warning("revocation abandoned after retries; ciphertext deleted",
                       extra={"client_id": client_id, "connection_id": connection_id, "provider": provider.key})
    return outcome
