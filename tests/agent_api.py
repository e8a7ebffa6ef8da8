"""The agent app as tests see it: where every test's agent app is built, its tokens, and every route it serves."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping

import pytest
from flask import Flask

from agent_service import create_app
from agent_service.auth import OPEN_ENDPOINTS, PROOF_HEADER
from agent_service.config import AgentConfig
from hapex.localstack.local_secrets import new_token
from shared.db import Database
from tests.factories import make_session

SERVICE = new_token()
PREVIOUS = new_token()
ADMIN = new_token()


def build_agent_app(database, agent_db: Database, *, service_token: str = SERVICE, key: bytes | None = None,
                    environ: Mapping[str, str] | None = None) -> Flask:
    """The agent app on the test's database, with known tokens and a credential key (random unless given)."""
    config = AgentConfig.from_env(
        {
            "AGENT_DATABASE_URL": database.agent_dsn,
            "AGENT_SERVICE_TOKEN": service_token,
            "AGENT_SERVICE_TOKEN_PREVIOUS": PREVIOUS,
            "AGENT_ADMIN_TOKEN": ADMIN,
            "CREDENTIAL_ENCRYPTION_KEY": base64.b64encode(key or os.urandom(32)).decode(),
            # The intake's tests hash with the test profile too: the agent checks them at that cost.
            "HAPEX_TEST_MODE": "1",
            "AGENT_PASSWORD_HASH_PROFILE": "test",
            **(environ or {}),
        }
    )
    app = create_app(config, database=agent_db)
    app.config["TESTING"] = False  # errors answer as in production, never raised into the test
    return app


@pytest.fixture
def agent_app(database, agent_db):
    """The agent API as the API door tests call it, with SERVICE, PREVIOUS and ADMIN."""
    return build_agent_app(database, agent_db)


@pytest.fixture
def api(agent_app):
    return agent_app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_proof(headers: Mapping[str, str], kind: str, secret: str) -> dict[str, str]:
    """The headers with a client's proof added: kind is "session" or "webhook"."""
    return {**headers, PROOF_HEADER: f"{kind} {secret}"}


def acting_for(intake_db: Database, client_id: uuid.UUID, *, token: str = SERVICE) -> dict[str, str]:
    """Headers of a call for one client as the intake makes it: the token and a live session of that client."""
    return with_proof(bearer(token), "session", make_session(intake_db, client_id))


def _routes(app, *, admin: bool, client_id: uuid.UUID | None = None) -> list[tuple[str, str]]:
    """(method, path) for every served route of one kind, with made-up ids filled in (client_id if given)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint in OPEN_ENDPOINTS or rule.rule.startswith("/v1/admin") != admin:
            continue
        path = rule.rule
        for name in rule.arguments:
            value = client_id if name == "client_id" and client_id is not None else uuid.uuid4()
            path = path.replace(f"<uuid:{name}>", str(value))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def client_routes(app, client_id: uuid.UUID | None = None) -> list[tuple[str, str]]:
    """Every route the service token opens (the OpenAPI document included), for client_id or made-up ids."""
    return _routes(app, admin=False, client_id=client_id)


def admin_routes(app) -> list[tuple[str, str]]:
    return _routes(app, admin=True)
