"""Cross-client figures for the operator, read through narrow SECURITY DEFINER functions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError

from agent_service.admin import reports
from agent_service.admin.schemas import Period, load_period
from agent_service.db import get_db
from shared.errors import ValidationFailed

blueprint = Blueprint("admin", __name__, url_prefix="/v1/admin")


def _period() -> Period:
    arguments: dict[str, Any] = request.args.to_dict()
    try:
        return load_period(arguments)
    except ValidationError as exc:
        raise ValidationFailed("The period must be given as ISO dates, since on or before until.",
                               fields=exc.normalized_messages()) from None


def _no_arguments() -> None:
    if request.args:
        raise ValidationFailed("This report takes no query arguments.",
                               fields={name: ["Unknown field."] for name in request.args})


@blueprint.get("/overview")
def overview() -> ResponseReturnValue:
    with get_db().transaction() as conn:
        row = reports.overview(conn)
    return jsonify(row)


@blueprint.get("/clients")
def clients() -> ResponseReturnValue:
    period = _period()
    with get_db().transaction() as conn:
        rows = reports.client_report(conn, period)
    return jsonify(**period.as_json(), clients=rows)


@blueprint.get("/connections/needs-reauth")
def connections_needing_reauth() -> ResponseReturnValue:
    _no_arguments()
    with get_db().transaction() as conn:
        rows = reports.reauth_connections(conn)
    return jsonify(connections=rows)


@blueprint.get("/automations/failing")
def failing_automations() -> ResponseReturnValue:
    period = _period()
    with get_db().transaction() as conn:
        rows = reports.failing_automations(conn, period)
    return jsonify(**period.as_json(), automations=rows)


@blueprint.get("/queue")
def queue() -> ResponseReturnValue:
    _no_arguments()
    with get_db().transaction() as conn:
        report = reports.queue_report(conn)
    return jsonify(report)
