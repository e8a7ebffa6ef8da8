"""Liveness and readiness: open to anyone, saying nothing but what answers and what does not."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.db import get_db
from shared.db import DatabaseError

logger = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        with get_db().connection() as conn:
            conn.execute("SELECT 1")
    except DatabaseError:
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready to serve: the database answers and every stored credential is under a key held here.

    Which key ids are missing goes to the log (and `hapex doctor`), not to this open route.
    """
    from agent_service.vault import MissingCredentialKeys, VaultStartupError, get_vault
    from agent_service.vault.startup import check_credential_keys

    checks = {"database": "ok", "credential_keys": "ok"}
    try:
        with get_db().connection() as conn:
            conn.execute("SELECT 1")
    except DatabaseError:
        checks.update(database="unreachable", credential_keys="unchecked")
        return jsonify(status="unavailable", **checks), 503
    try:
        check_credential_keys(get_db(), get_vault().keyring)
    except MissingCredentialKeys as missing:
        logger.error("not ready: credentials under key ids this agent does not hold",
                     extra={"count": sum(missing.missing.values()), "key_id": ",".join(missing.missing)})
        checks["credential_keys"] = "missing"
    except VaultStartupError as failure:
        logger.error("not ready: credential keys could not be checked", extra={"error_class": type(failure).__name__})
        checks["credential_keys"] = "unchecked"
    if any(value != "ok" for value in checks.values()):
        return jsonify(status="unavailable", **checks), 503
    return jsonify(status="ok", **checks)
