"""Liveness and readiness: open to anyone, saying nothing but what answers and what does not."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from agent_service.contract import contract
from agent_service.db import get_db

logger = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)


class LivenessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class ReadinessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    database = fields.String(required=True, validate=validate.OneOf(["ok", "unreachable"]))
    credential_keys = fields.String(required=True, validate=validate.OneOf(["ok", "missing", "unchecked"]))


@blueprint.get("/healthz")
@contract(LivenessSchema)
def healthz() -> Any:
    """Liveness: the process answers. No database, so an outage does not get a live agent restarted."""
    return {"status": "ok"}


@blueprint.get("/readyz")
@contract(ReadinessSchema, also={503: ("Not ready; which check failed (key ids are in the log, not here).",
                                       ReadinessSchema)})
def readyz() -> Any:
    """Ready to serve: the database answers and every stored credential is under a key held here.

    Which key ids are missing goes to the log (and `hapex doctor`), not to this open route.
    """
    from agent_service.vault import MissingCredentialKeys, VaultStartupError, get_vault
    from agent_service.vault.startup import check_credential_keys

    checks = {"database": "ok", "credential_keys": "ok"}
    if not get_db().answers():  # within a second, not the pool's checkout timeout
        checks.update(database="unreachable", credential_keys="unchecked")
        return {"status": "unavailable", **checks}, 503
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
        return {"status": "unavailable", **checks}, 503
    return {"status": "ok", **checks}
