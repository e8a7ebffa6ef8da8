"""/v1/clients/<client_id>/automations/<automation_id>/runs: start a run now."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.db import get_db
from agent_service.runs.triggers import RunRefused, start_run
from shared.db import tenant_transaction
from shared.errors import APIError

blueprint = Blueprint("runs", __name__, url_prefix="/v1/clients/<uuid:client_id>")


class RunNotStarted(APIError):
    """The run could not start."""


@blueprint.post("/automations/<uuid:automation_id>/runs")
def run_now(client_id: uuid.UUID, automation_id: uuid.UUID) -> ResponseReturnValue:
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
    except RunRefused as refused:
        error = RunNotStarted(refused.message)
        error.status, error.name = refused.status, refused.error
        raise error from None
    assert started is not None
    return jsonify(run_id=str(started.run_id), status=started.status), 202
