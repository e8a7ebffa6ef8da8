"""/v1/clients/<client_id>/connections: what a client has connected, without secrets."""

from __future__ import annotations

import logging
import uuid

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.connections import repository
from agent_service.db import get_db
from shared.db import NoResult, tenant_transaction
from shared.errors import NotFound

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


@blueprint.delete("/connections")
def revoke_connections(client_id: uuid.UUID) -> ResponseReturnValue:
    """Revoke everything a client connected; the intake calls this before deleting an account.

    Today this marks every connection revoked and deletes its stored credentials, in one
    transaction. Calling each provider's own revocation endpoint arrives with the provider
    connections themselves (issue 5), which will do it here, before the rows change.
    """
    with tenant_transaction(get_db(), client_id) as conn:
        revoked = repository.revoke_all_connections(conn, client_id=client_id)
        deleted = repository.delete_all_credentials(conn, client_id=client_id)
    logger.info(
        "connections revoked", extra={"client_id": client_id, "count": revoked}
    )
    return jsonify(connections_revoked=revoked, credentials_deleted=deleted)
