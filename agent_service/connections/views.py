"""/v1/clients/<client_id>/connections: what a client has connected, without secrets."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.connections import repository
from agent_service.db import get_db
from shared.db import NoResult, tenant_transaction
from shared.errors import NotFound

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
