"""The inbound webhook trigger: POST /hooks/<secret> starts a run of one automation.

The secret is the only credential, so it is treated like one: 256 random bits, shown to
the client once, stored as its SHA-256 only, and kept out of the access log (the logged
path is the route, not the URL). The endpoint is open (no session, no CSRF token: the
caller is another system), ignores the body, and answers an unknown secret, a disabled
automation and a non-webhook automation with the same 404 after the same single lookup.

The secret is also the client's proof on the run it starts: the agent checks it against the
stored hash (intake.agent_client.acting_for), so the intake cannot start a webhook run of an
automation whose URL was not just called. Only a person's live session can set a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from intake import agent_client
from intake.accounts.sessions import current_secret
from intake.accounts.throttle import LoginThrottle
from intake.agent_client import AgentRefused, AgentUnavailable, ClientProof, ClientProofRefused, acting_for
from intake.automations import repository
from intake.db import get_agent, get_db
from shared.db import tenant_transaction
from shared.db.pool import Connection
from shared.request_input import body_ignored

logger = logging.getLogger(__name__)

blueprint = Blueprint("hooks", __name__)

SECRET_BYTES = 32
BODY_LIMIT = 64 * 1024
# Runs one automation's webhook may start per window; more is refused with 429.
RUNS_PER_WINDOW = 10
WINDOW_SECONDS = 60
NOT_FOUND_MESSAGE = "No webhook is enabled at this address."


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def issue_secret(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID) -> str:
    """A fresh secret for the automation's URL; only its hash is stored, the old one stops working.

    The database stores it only for this request's live session of the automation's client.
    """
    secret = new_secret()
    if not repository.set_webhook_secret_hash(conn, session_secret=current_secret(client_id),
                                              automation_id=automation_id, secret_hash=secret_hash(secret)):
        raise ClientProofRefused("client_proof_refused")
    logger.info("webhook url issued", extra={"client_id": client_id, "automation_id": automation_id})
    return secret


def forget_secret(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID) -> None:
    """The automation's webhook URL stops working (its trigger is no longer a webhook)."""
    if not repository.set_webhook_secret_hash(conn, session_secret=current_secret(client_id),
                                              automation_id=automation_id, secret_hash=None):
        raise ClientProofRefused("client_proof_refused")


def _error(status: int, name: str, message: str, **headers: str) -> ResponseReturnValue:
    return jsonify(error=name, message=message), status, headers


def _throttle() -> LoginThrottle:
    """Failed lookups per network address, counted in PostgreSQL apart from login failures."""
    secret = current_app.config["SECRET_KEY"].encode()
    key = hmac.new(secret, b"hapex webhook throttle", hashlib.sha256).digest()
    return LoginThrottle(get_db(), key)


# The access log masks everything after /hooks/ (intake/__init__.py installs it so).
@blueprint.route("/hooks/<path:secret>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@body_ignored
def trigger(secret: str) -> ResponseReturnValue:
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Call this address with POST.", Allow="POST")
    if (request.content_length or 0) > BODY_LIMIT:
        return _error(413, "too_large", "The body is ignored; send at most 64 KiB.")
    throttle = _throttle()
    buckets = throttle.buckets(email=None, address=request.remote_addr)
    if throttle.is_locked(buckets):
        return _error(429, "rate_limited", "Too many calls to unknown addresses from here; wait, then retry.",
                      **{"Retry-After": "900"})
    with get_db().transaction() as conn:
        found = repository.find_webhook(conn, secret_hash=secret_hash(secret))
    if found is None:
        throttle.record_failure(buckets, account=False)
        logger.info("webhook refused", extra={"status": "unknown"})
        return _error(404, "not_found", NOT_FOUND_MESSAGE)
    client_id, automation_id = found
    with tenant_transaction(get_db(), client_id) as conn:
        recent = repository.recent_webhook_runs(conn, client_id=client_id, automation_id=automation_id,
                                                seconds=WINDOW_SECONDS)
    if recent >= RUNS_PER_WINDOW:
        logger.info("webhook refused", extra={"status": "rate_limited", "automation_id": automation_id})
        return _error(429, "rate_limited", "This automation was started too often; wait, then retry.",
                      **{"Retry-After": str(WINDOW_SECONDS)})
    try:
        with acting_for(ClientProof.webhook(client_id, secret)):
            started = get_agent().start_run(client_id, automation_id, trigger="webhook")
    except ClientProofRefused:
        # The automation stopped being an enabled webhook between the lookup and the agent's check.
        logger.info("webhook refused", extra={"status": "proof_refused", "automation_id": automation_id})
        return _error(404, "not_found", NOT_FOUND_MESSAGE)
    except AgentUnavailable:
        return _error(503, "unavailable", "The run could not be started; try again shortly.")
    except AgentRefused as refused:
        if refused.name == agent_client.NOT_FOUND:
            return _error(404, "not_found", NOT_FOUND_MESSAGE)
        if refused.name in agent_client.RUN_REFUSALS:
            return _error(409, "run_refused", "The automation cannot run right now.")
        logger.warning("webhook run not started", extra={"error": refused.name})
        return _error(503, "unavailable", "The run could not be started; try again shortly.")
    logger.info("webhook run started", extra={"client_id": client_id, "automation_id": automation_id,
                                              "run_id": started.run_id})
    return jsonify(run_id=str(started.run_id)), 202
