"""Who may call: deny by default, on two counts.

1. The bearer token: liveness and readiness are open, admin routes take the admin token, every
   other route the service token (or its previous value during a rotation).
2. The client's own proof: a route that acts for a client (its URL rule names `client_id`) also
   needs the `Hapex-Client-Proof` header, `session <secret>` or `webhook <secret>`, which the agent
   checks against the database's hash before the view runs. The service token alone says "this
   is the intake", never "for any client": a compromised intake reaches only the clients whose
   secrets it is handed at that moment, and a database dump (hashes only) gives nothing to present.
   A session proves every route of its client; a webhook's secret only the routes listed in
   WEBHOOK_ENDPOINTS, for the automation in the URL. A service-token route naming no client must
   be listed in CLIENTLESS_ENDPOINTS, or it is refused. docs/client-proof.md says why.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from flask import Flask, g, request
from flask.typing import ResponseReturnValue

from agent_service.config import AgentConfig
from agent_service.db import get_db
from shared.db import QuerySet, fetch_one
from shared.errors import HapexError

QUERIES = QuerySet(Path(__file__).with_name("auth.sql"))

OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})
ADMIN_PREFIX = "/v1/admin/"
PROOF_HEADER = "Hapex-Client-Proof"
# Service-token routes that act for no client (so need no client's proof).
# Sign-in comes before any session exists (agent_service/sign_in): the password, or a pending sign-in's
# ticket with a code, is its proof, and it answers only the session of the person who gave it.
# The passkey sign-in's options and check (agent_service/passkeys) likewise: the signed assertion (with the
# pending sign-in's ticket, as the second step) is its proof, and the session it starts is that passkey's user's.
CLIENTLESS_ENDPOINTS = frozenset({"openapi.openapi_document", "sign_in.sign_in", "sign_in.second_factor",
                                  "passkey_sign_in.sign_in_options", "passkey_sign_in.check"})
# Routes a webhook's secret may prove: starting a run of the automation the URL names.
WEBHOOK_ENDPOINTS = frozenset({"runs.run_now"})
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class MissingToken(HapexError):
    name = "unauthorized"
    status = 401
    message = "This API needs an Authorization: Bearer token."


class WrongToken(HapexError):
    name = "forbidden"
    status = 403
    message = "The token does not grant access to this route."


class ClientProofRequired(HapexError):
    name = "client_proof_required"
    status = 401
    message = "This call acts for a client and needs that client's proof (a Hapex-Client-Proof header)."


class ClientProofRefused(HapexError):
    name = "client_proof_refused"
    status = 403
    message = "The client's proof is not a live session or webhook of this client."


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def needs_client_proof(endpoint: str | None) -> bool:
    """Whether a route must carry a client's proof: every one but the open, clientless and admin routes."""
    return not (endpoint is None or endpoint in OPEN_ENDPOINTS or endpoint in CLIENTLESS_ENDPOINTS
                or endpoint.startswith("admin."))


def proof_kind() -> str | None:
    """How this request proved its client: "session", "webhook", or None on a route that needs none."""
    kind: str | None = g.get("client_proof_kind")
    return kind


def _check_client_proof() -> None:
    """Refuse unless the request carries a live proof of the client its URL names."""
    g.client_proof_kind = None
    if request.url_rule is None or not needs_client_proof(request.endpoint):
        return  # an unknown path or method answers 404 or 405, with nothing opened
    client_id = (request.view_args or {}).get("client_id")
    if not isinstance(client_id, uuid.UUID):
        raise ClientProofRefused()  # a route that names no client is not served for the service token
    header = request.headers.get(PROOF_HEADER, "")
    if not header.strip():
        raise ClientProofRequired()
    kind, _, secret = header.strip().partition(" ")
    if not _SECRET_SHAPE.fullmatch(secret):
        raise ClientProofRefused()
    with get_db().transaction() as conn:
        if kind == "session":
            proved = fetch_one(conn, QUERIES["session_proves_client"], client_id=client_id, secret=secret)["proved"]
        elif kind == "webhook" and request.endpoint in WEBHOOK_ENDPOINTS:
            automation_id = (request.view_args or {}).get("automation_id")
            proved = fetch_one(conn, QUERIES["webhook_proves_client"], client_id=client_id,
                               automation_id=automation_id, secret=secret)["proved"]
        else:
            proved = False
    if not proved:
        raise ClientProofRefused()
    g.client_proof_kind = kind


def install(app: Flask, config: AgentConfig) -> None:
    @app.before_request
    def require_token() -> ResponseReturnValue | None:
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        token = bearer_token()
        if token is None:
            raise MissingToken()
        if request.blueprint == "admin" or request.path.startswith(ADMIN_PREFIX):
            allowed = config.admin_token.matches(token)
        else:
            allowed = config.service_token.matches(token) | (
                config.service_token_previous is not None
                and config.service_token_previous.matches(token)
            )
        if not allowed:
            raise WrongToken()
        if not request.path.startswith(ADMIN_PREFIX):
            _check_client_proof()
        return None
