"""Cross-client figures for the operator, read through narrow SECURITY DEFINER functions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from agent_service.admin import reports
from agent_service.admin.schemas import (
    ClientReportSchema,
    FailingReportSchema,
    NoArgumentsSchema,
    OverviewSchema,
    Period,
    PeriodSchema,
    QueueReportSchema,
    ReauthReportSchema,
)
from agent_service.contract import contract
from agent_service.db import get_db

blueprint = Blueprint("admin", __name__, url_prefix="/v1/admin")


@blueprint.get("/overview")
@contract(OverviewSchema)
def overview() -> dict[str, Any]:
    """Counts across clients for the operator."""
    with get_db().transaction() as conn:
        return reports.overview(conn)


@blueprint.get("/clients")
@contract(ClientReportSchema, query=PeriodSchema)
def clients(data: Period) -> dict[str, Any]:
    """Every client with its runs, failed runs, failure rate and cost over a period; no email, no content."""
    with get_db().transaction() as conn:
        rows = reports.client_report(conn, data)
    return {"since": data.since, "until": data.until, "clients": rows}


@blueprint.get("/connections/needs-reauth")
@contract(ReauthReportSchema, query=NoArgumentsSchema)
def connections_needing_reauth() -> dict[str, Any]:
    """Connections waiting for their client to reconnect them, longest waiting first."""
    with get_db().transaction() as conn:
        return {"connections": reports.reauth_connections(conn)}


@blueprint.get("/automations/failing")
@contract(FailingReportSchema, query=PeriodSchema)
def failing_automations(data: Period) -> dict[str, Any]:
    """Automations with failed runs over a period, or paused, most failures first; ids, counts, error classes."""
    with get_db().transaction() as conn:
        rows = reports.failing_automations(conn, data)
    return {"since": data.since, "until": data.until, "automations": rows}


@blueprint.get("/queue")
@contract(QueueReportSchema, query=NoArgumentsSchema)
def queue() -> dict[str, Any]:
    """Job queue depth by queue and status, and each worker's last heartbeat."""
    with get_db().transaction() as conn:
        return reports.queue_report(conn)
