"""The signed-in client's pages: automations, connections, runs, costs.

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


@blueprint.get("/automations")
def automations() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_automations(conn, client_id=_client_id())
    return render_template("workspace/automations.html", automations=rows)


@blueprint.get("/automations/<uuid:automation_id>")
def automation(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _found(repository.get_automation(conn, client_id=_client_id(), automation_id=automation_id))
        runs = repository.list_runs(conn, client_id=_client_id(), automation_id=automation_id, limit=20)
    return render_template("workspace/automation.html", automation=row, runs=runs)


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


@blueprint.get("/runs")
def runs() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_runs(conn, client_id=_client_id())
    return render_template("workspace/runs.html", runs=rows)


@blueprint.get("/runs/<uuid:run_id>")
def run(run_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _found(repository.get_run(conn, client_id=_client_id(), run_id=run_id))
        steps = repository.list_run_steps(conn, client_id=_client_id(), run_id=run_id)
    return render_template("workspace/run.html", run=row, steps=steps)


@blueprint.get("/costs")
def costs() -> ResponseReturnValue:
    with _tenant() as conn:
        lines = repository.costs_this_month(conn, client_id=_client_id())
        budget = repository.monthly_budget(conn, client_id=_client_id())
    total = sum(line["amount_microusd"] for line in lines)
    return render_template("workspace/costs.html", lines=lines, total=total, budget=budget)
