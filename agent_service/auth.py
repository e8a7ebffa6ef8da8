"""Bearer-token checks: deny by default, liveness and readiness open, admin routes on their own token."""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue

from agent_service.config import AgentConfig
from shared.errors import HapexError

OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})
ADMIN_PREFIX = "/v1/admin/"


class MissingToken(HapexError):
    name = "unauthorized"
    status = 401
    message = "This API needs an Authorization: Bearer token."


class WrongToken(HapexError):
    name = "forbidden"
    status = 403
    message = "The token does not grant access to this route."


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
        return None
