"""The agent app as the API door tests see it: its three tokens and every route it serves."""

from __future__ import annotations

import uuid

import pytest

from agent_service import create_app
from agent_service.auth import OPEN_ENDPOINTS
from agent_service.config import AgentConfig
from hapex.localstack.local_secrets import new_encryption_key, new_token

SERVICE = new_token()
PREVIOUS = new_token()
ADMIN = new_token()


@pytest.fixture
def agent_app(database, agent_db):
    config = AgentConfig.from_env(
        {
            "AGENT_DATABASE_URL": database.agent_dsn,
            "AGENT_SERVICE_TOKEN": SERVICE,
            "AGENT_SERVICE_TOKEN_PREVIOUS": PREVIOUS,
            "AGENT_ADMIN_TOKEN": ADMIN,
            "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(),
        }
    )
    app = create_app(config, database=agent_db)
    app.config["TESTING"] = False
    return app


@pytest.fixture
def api(agent_app):
    return agent_app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _routes(app, *, admin: bool) -> list[tuple[str, str]]:
    """(method, path) for every served route of one kind, with made-up ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint in OPEN_ENDPOINTS or rule.rule.startswith("/v1/admin") != admin:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<uuid:{name}>", str(uuid.uuid4()))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def client_routes(app) -> list[tuple[str, str]]:
    return _routes(app, admin=False)


def admin_routes(app) -> list[tuple[str, str]]:
    return _routes(app, admin=True)
