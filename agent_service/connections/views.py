"""/v1/clients/<client_id>/connections: what a client has connected, without secrets."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from agent_service.connections import lifecycle, repository
from agent_service.connections.provider_oauth import (
    InvalidGrant,
    ProviderRejected,
    TransientProviderError,
)
from agent_service.connections.schemas import ApiKeySchema, OAuthExchangeSchema
from agent_service.db import get_db, get_runtime
from shared.db import NoResult, tenant_transaction
from shared.errors import APIError, NotFound, ValidationFailed
from shared.secret import Secret

logger = logging.getLogger(__name__)

blueprint = Blueprint("connections", __name__, url_prefix="/v1/clients/<uuid:client_id>")


@blueprint.get("/connections")
def list_connections(client_id: uuid.UUID) -> ResponseReturnValue:
    with tenant_transaction(get_db(), client_id) as conn:
        rows = repository.list_connections(conn)
    return jsonify(connections=rows)


@blueprint.get("/connections/<uuid:connection_id>")
def get_connection(client_id: uuid.UUID, connection_id: uuid.UUID) -> ResponseReturnValue:
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            row = repository.get_connection(conn, connection_id=connection_id)
    except NoResult:
        raise NotFound("No such connection.") from None
    return jsonify(row)


class AuthorizationRefused(APIError):
    """The provider did not accept the authorization; start connecting again."""

    status = 400
    name = "authorization_refused"


class ProviderUnavailable(APIError):
    """The provider could not be reached; try again in a moment."""

    status = 503
    name = "provider_unavailable"


class ProviderNotConfigured(APIError):
    """This provider is not available on this Hapex deployment."""

    status = 409
    name = "provider_unavailable"


def _load(schema: Schema) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        return schema.load(body)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ValidationFailed(fields=exc.normalized_messages()) from None


@blueprint.post("/connections/oauth")
def exchange_authorization_code(client_id: uuid.UUID) -> ResponseReturnValue:
    """Trade the code the intake received for tokens, and store them encrypted."""
    data = _load(OAuthExchangeSchema())
    rt = get_runtime()
    provider = rt.provider(data["provider"])
    oauth_client = rt.oauth_clients.get(provider.key)
    if oauth_client is None:
        raise ProviderNotConfigured()
    try:
        connected = lifecycle.connect_oauth(
            rt.db, rt.vault, client_id=client_id, provider=provider, oauth_client=oauth_client,
            code=Secret(data["code"]), code_verifier=Secret(data["code_verifier"]),
            redirect_uri=data["redirect_uri"], requested_scopes=tuple(data["requested_scopes"]),
            connection_id=data["connection_id"], verify=rt.verify,
        )
    except lifecycle.ConnectionMissing:
        raise NotFound("No such connection.") from None
    except (InvalidGrant, ProviderRejected):
        raise AuthorizationRefused() from None
    except TransientProviderError:
        raise ProviderUnavailable() from None
    return jsonify(connection=connected.connection, missing_scopes=list(connected.missing_scopes)), 201


@blueprint.post("/connections/api-key")
def store_api_key(client_id: uuid.UUID) -> ResponseReturnValue:
    """Keep a client's API key encrypted; only its last four characters come back."""
    data = _load(ApiKeySchema())
    rt = get_runtime()
    row = lifecycle.connect_api_key(rt.db, rt.vault, client_id=client_id, provider=rt.provider(data["provider"]),
                                    api_key=Secret(data["api_key"]), label=data["label"])
    return jsonify(connection=row), 201


@blueprint.delete("/connections/<uuid:connection_id>")
def disconnect(client_id: uuid.UUID, connection_id: uuid.UUID) -> ResponseReturnValue:
    """Revoke at the provider, delete the ciphertext, pause the automations that needed it."""
    rt = get_runtime()
    try:
        with tenant_transaction(rt.db, client_id) as conn:
            row = repository.get_connection(conn, connection_id=connection_id)
    except NoResult:
        raise NotFound("No such connection.") from None
    if row["status"] == "revoked":
        return jsonify(connection_id=str(connection_id), revocation="already_disconnected")
    provider = rt.provider(row["provider"])
    try:
        outcome = lifecycle.disconnect(rt.db, rt.vault, client_id=client_id, connection_id=connection_id,
                                       provider=provider, oauth_client=rt.oauth_clients.get(provider.key),
                                       verify=rt.verify)
    except lifecycle.ConnectionMissing:
        raise NotFound("No such connection.") from None
    return jsonify(connection_id=str(connection_id), revocation=outcome.value)


@blueprint.delete("/connections")
def revoke_connections(client_id: uuid.UUID) -> ResponseReturnValue:
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
    return jsonify(connections_revoked=revoked, credentials_deleted=deleted)
