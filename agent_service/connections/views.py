"""/v1/clients/<client_id>/connections: what a client has connected, without secrets."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint

from agent_service.connections import lifecycle, repository
from agent_service.connections.provider_oauth import (
    InvalidGrant,
    ProviderRejected,
    TransientProviderError,
)
from agent_service.connections.schemas import (
    ALREADY_DISCONNECTED,
    ApiKeySchema,
    ConnectedSchema,
    ConnectionListSchema,
    ConnectionSchema,
    DisconnectedSchema,
    OAuthExchangeSchema,
    RevokedAllSchema,
    StoredKeySchema,
)
from agent_service.contract import contract
from agent_service.db import get_db, get_runtime
from shared.db import NoResult, tenant_transaction
from shared.db.errors import ReferencedRowMissing
from shared.errors import HapexError, NotFound
from shared.secret import Secret

logger = logging.getLogger(__name__)

blueprint = Blueprint("connections", __name__, url_prefix="/v1/clients/<uuid:client_id>")


class ClientNotFound(NotFound):
    """The intake named a client the agent has no row for: its own name, so no one reads it as a missing connection."""

    name = "client_not_found"
    message = "No such client."


class AuthorizationRefused(HapexError):
    name = "authorization_refused"
    status = 400
    message = "The provider did not accept the authorization; start connecting again."


class ProviderUnavailable(HapexError):
    name = "provider_unavailable"
    status = 503
    message = "The provider could not be reached; try again in a moment."


class ProviderNotConfigured(HapexError):
    name = "provider_not_configured"
    status = 409
    message = "This provider is not available on this Hapex deployment."


@contextmanager
def _known_client() -> Iterator[None]:
    """A connection stored for a client the agent has no row for is ClientNotFound."""
    try:
        yield
    except ReferencedRowMissing:
        raise ClientNotFound() from None


@blueprint.get("/connections")
@contract(ConnectionListSchema)
def list_connections(client_id: uuid.UUID) -> dict[str, Any]:
    """A client's connections, metadata only."""
    with tenant_transaction(get_db(), client_id) as conn:
        return {"connections": repository.list_connections(conn)}


@blueprint.get("/connections/<uuid:connection_id>")
@contract(ConnectionSchema, refusals=(lifecycle.ConnectionMissing,))
def get_connection(client_id: uuid.UUID, connection_id: uuid.UUID) -> dict[str, Any]:
    """One connection, metadata only."""
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            return repository.get_connection(conn, connection_id=connection_id)
    except NoResult:
        raise lifecycle.ConnectionMissing() from None


@blueprint.post("/connections/oauth")
@contract(ConnectedSchema, status=201, body=OAuthExchangeSchema,
          refusals=(AuthorizationRefused, ClientNotFound, lifecycle.ConnectionMissing, ProviderNotConfigured,
                    ProviderUnavailable))
def exchange_authorization_code(client_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Trade the code the intake received (with its PKCE verifier) for tokens, and store them encrypted."""
    rt = get_runtime()
    provider = rt.provider(data["provider"])
    oauth_client = rt.oauth_clients.get(provider.key)
    if oauth_client is None:
        raise ProviderNotConfigured()
    try:
        with _known_client():
            connected = lifecycle.connect_oauth(
                rt.db, rt.vault, client_id=client_id, provider=provider, oauth_client=oauth_client,
                code=Secret(data["code"]), code_verifier=Secret(data["code_verifier"]),
                redirect_uri=data["redirect_uri"], requested_scopes=tuple(data["requested_scopes"]),
                connection_id=data["connection_id"], verify=rt.verify,
            )
    except (InvalidGrant, ProviderRejected):
        raise AuthorizationRefused() from None
    except TransientProviderError:
        raise ProviderUnavailable() from None
    return {"connection": connected.connection, "missing_scopes": list(connected.missing_scopes)}


@blueprint.post("/connections/api-key")
@contract(StoredKeySchema, status=201, body=ApiKeySchema, refusals=(ClientNotFound,))
def store_api_key(client_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Keep a client's API key encrypted; only its last four characters come back."""
    rt = get_runtime()
    with _known_client():
        row = lifecycle.connect_api_key(rt.db, rt.vault, client_id=client_id, provider=rt.provider(data["provider"]),
                                        api_key=Secret(data["api_key"]), label=data["label"])
    return {"connection": row}


@blueprint.delete("/connections/<uuid:connection_id>")
@contract(DisconnectedSchema, refusals=(lifecycle.ConnectionMissing,))
def disconnect(client_id: uuid.UUID, connection_id: uuid.UUID) -> dict[str, Any]:
    """Disconnect: revoke at the provider, delete the ciphertext, pause the automations that needed it."""
    rt = get_runtime()
    try:
        with tenant_transaction(rt.db, client_id) as conn:
            row = repository.get_connection(conn, connection_id=connection_id)
    except NoResult:
        raise lifecycle.ConnectionMissing() from None
    if row["status"] == "revoked":
        return {"connection_id": connection_id, "revocation": ALREADY_DISCONNECTED}
    provider = rt.provider(row["provider"])
    outcome = lifecycle.disconnect(rt.db, rt.vault, client_id=client_id, connection_id=connection_id,
                                   provider=provider, oauth_client=rt.oauth_clients.get(provider.key),
                                   verify=rt.verify)
    return {"connection_id": connection_id, "revocation": outcome.value}


@blueprint.post("/connections/<uuid:connection_id>/end-grant")
@contract(DisconnectedSchema, refusals=(lifecycle.ConnectionMissing,))
def end_grant(client_id: uuid.UUID, connection_id: uuid.UUID) -> dict[str, Any]:
    """End the provider's grant so that the client can consent to less; the connection stays, pending."""
    rt = get_runtime()
    try:
        with tenant_transaction(rt.db, client_id) as conn:
            row = repository.get_connection(conn, connection_id=connection_id)
    except NoResult:
        raise lifecycle.ConnectionMissing() from None
    provider = rt.provider(row["provider"])
    outcome = lifecycle.end_grant_to_narrow(rt.db, rt.vault, client_id=client_id, connection_id=connection_id,
                                            provider=provider, oauth_client=rt.oauth_clients.get(provider.key),
                                            verify=rt.verify)
    return {"connection_id": connection_id, "revocation": outcome.value}


@blueprint.delete("/connections")
@contract(RevokedAllSchema)
def revoke_connections(client_id: uuid.UUID) -> dict[str, Any]:
    """Revoke everything a client connected; the intake calls this before deleting an account.

    Each live connection is revoked at its provider first (best effort: the account is
    going, so a provider that is down cannot hold it up), then every connection is marked
    revoked and every stored credential deleted, in one transaction.
    """
    rt = get_runtime()
    with tenant_transaction(get_db(), client_id) as conn:
        live = [r for r in repository.list_connections(conn) if r["status"] != "revoked"]
    for row in live:
        provider = rt.provider(row["provider"])
        try:
            lifecycle.disconnect(rt.db, rt.vault, client_id=client_id, connection_id=row["connection_id"],
                                 provider=provider, oauth_client=rt.oauth_clients.get(provider.key),
                                 verify=rt.verify)
        except Exception:
            logger.exception("revocation failed during account deletion",
                             extra={"client_id": client_id, "connection_id": row["connection_id"]})
    with tenant_transaction(get_db(), client_id) as conn:
        revoked = repository.revoke_all_connections(conn, client_id=client_id)
        deleted = repository.delete_all_credentials(conn, client_id=client_id)
    logger.info(
        "connections revoked", extra={"client_id": client_id, "count": revoked}
    )
    return {"connections_revoked": revoked, "credentials_deleted": deleted}
