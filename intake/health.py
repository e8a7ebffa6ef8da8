"""Liveness of the intake: the process answers and the database is reachable."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from intake.db import get_db
from shared.db import DatabaseError

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        with get_db().connection() as conn:
            conn.execute("SELECT 1")
    except DatabaseError:
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
