"""The signed-in client's connection pages (automations, runs and costs: intake.automations).

Each reads through tenant_transaction with the session's client; an id that is not one of
that client's rows is a 404, whether it exists for someone else or not at all.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, abort, g, render_template
from flask.typing import ResponseReturnValue

from intake.db import get_db
from intake.workspace import repository
from shared.db import tenant_transaction
from shared.db.pool import Connection

blueprint = Blueprint("workspace", __name__)


def _client_id() -> uuid.UUID:
    return g.identity.client_id  # type: ignore[no-any-return]


def _found(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        abort(404)
    return row


def _tenant() -> AbstractContextManager[Connection]:
    return tenant_transaction(get_db(), _client_id())


@blueprint.get("/connections")
def connections() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_connections(conn, client_id=_client_id())
    return render_template("workspace/connections.html", connections=rows)


@blueprint.get("/connections/<uuid:connection_id>")
def connection(connection_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _found(repository.get_connection(conn, client_id=_client_id(), connection_id=connection_id))
    return render_template("workspace/connection.html", connection=row)
