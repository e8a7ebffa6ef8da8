"""Liveness and readiness of the intake: the process answers; for readiness the database and the agent too."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from intake.agent_client import AgentError
from intake.db import get_agent, get_db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers. No database, so an outage does not get a live intake restarted."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready for clients: the database answers and the agent answers over HTTPS.

    The agent's own readiness (its key ring) is the agent's /readyz: a key problem there
    should not take the intake's pages out of service.
    """
    checks = {"database": "ok", "agent": "ok"}
    if not get_db().answers():  # within a second, not the pool's checkout timeout
        checks["database"] = "unreachable"
    try:
        get_agent().check_alive()
    except AgentError:
        checks["agent"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ok" if ready else "unavailable", **checks)
    response.headers["Cache-Control"] = "no-store"  # a cached "ok" would hide an outage
    return response, 200 if ready else 503
