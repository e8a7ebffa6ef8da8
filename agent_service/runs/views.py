"""/v1/clients/<client_id>/automations/<automation_id>/runs: start a run now; and a run's
stored step outputs, which only the agent can open."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from agent_service.db import get_db
from agent_service.runs.triggers import RunRefused, start_run
from agent_service.vault import get_vault, outputs
from shared.db import tenant_transaction
from shared.errors import APIError, NotFound, ValidationFailed

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


class RunNotFound(NotFound):
    """This client has no such run."""


@blueprint.get("/runs/<uuid:run_id>/outputs")
def run_outputs(client_id: uuid.UUID, run_id: uuid.UUID) -> ResponseReturnValue:
    """The run's stored step outputs, opened for its client (only when it chose to store them)."""
    with tenant_transaction(get_db(), client_id) as conn:
        if not outputs.run_exists(conn, run_id=run_id):
            raise RunNotFound()
        stored = get_vault().open_step_outputs(conn, client_id=client_id, run_id=run_id)
    body = [{key: value for key, value in item.as_json().items() if key != "run_id"} for item in stored]
    response = jsonify(run_id=str(run_id), outputs=body)
    response.headers["Cache-Control"] = "no-store"
    return response


class OutputsPageSchema(Schema):
    """A page of a client's stored outputs: after a (run, step), at most `limit` of them."""

    class Meta:
        unknown = RAISE

    after_run = fields.UUID(load_default=None)
    after_step = fields.Integer(load_default=None, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


@blueprint.get("/outputs")
def client_outputs(client_id: uuid.UUID) -> ResponseReturnValue:
    """Every stored step output of the client, a page at a time (its data export takes them all)."""
    try:
        page = OutputsPageSchema().load(request.args.to_dict())
    except ValidationError as exc:
        raise ValidationFailed(fields=exc.normalized_messages()) from None
    if (page["after_run"] is None) != (page["after_step"] is None):
        raise ValidationFailed(fields={"after_step": ["after_run and after_step go together."]})
    after = None if page["after_run"] is None else (page["after_run"], page["after_step"])
    with tenant_transaction(get_db(), client_id) as conn:
        stored = get_vault().open_client_outputs(conn, client_id=client_id, after=after, limit=page["limit"])
    last = stored[-1] if len(stored) == page["limit"] else None
    response = jsonify(outputs=[item.as_json() for item in stored],
                       next=None if last is None else {"after_run": str(last.run_id), "after_step": last.step_index})
    response.headers["Cache-Control"] = "no-store"
    return response
