"""Cross-client figures for the operator, read through narrow SECURITY DEFINER functions."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.db import get_db
from shared.db import fetch_one

blueprint = Blueprint("admin", __name__, url_prefix="/v1/admin")


@blueprint.get("/overview")
def overview() -> ResponseReturnValue:
    with get_db().transaction() as conn:
        row = fetch_one(conn, "SELECT * FROM hapex_admin_overview()")
    return jsonify(row)
