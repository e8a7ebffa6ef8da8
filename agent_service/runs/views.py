"""/v1/clients/<client_id>/automations/<automation_id>/runs: start a run now."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from agent_service.db import get_db
from agent_service.runs.triggers import RunRefused, start_run
from shared.db import tenant_transaction
from shared.errors import APIError, ValidationFailed

blueprint = Blueprint("runs", __name__, url_prefix="/v1/clients/<uuid:client_id>")


class RunNotStarted(APIError):
    """The run could not start."""


class RunRequestSchema(Schema):
    """What started the run: the client pressing "Run now", or a call to its webhook URL."""

    class Meta:
        unknown = RAISE

    trigger = fields.String(load_default="manual", validate=validate.OneOf(["manual", "webhook"]))


def _run_request() -> dict[str, Any]:
    """The optional body; no body at all means a manual run."""
    if not request.get_data(cache=True):
        return RunRequestSchema().load({})  # type: ignore[no-any-return]
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        return RunRequestSchema().load(body)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ValidationFailed(fields=exc.normalized_messages()) from None


@blueprint.post("/automations/<uuid:automation_id>/runs")
def run_now(client_id: uuid.UUID, automation_id: uuid.UUID) -> ResponseReturnValue:
    trigger_kind = _run_request()["trigger"]
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind=trigger_kind)
    except RunRefused as refused:
        error = RunNotStarted(refused.message)
        error.status, error.name = refused.status, refused.error
        raise error from None
    assert started is not None
    return jsonify(run_id=str(started.run_id), status=started.status), 202
