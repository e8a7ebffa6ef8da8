"""The agent service: internal JSON API and the workers that run automations."""

from __future__ import annotations

from flask import Flask

from agent_service.config import AgentConfig
from shared import access_log
from shared.db import Database
from shared.errors import register_json_errors


def create_app(config: AgentConfig, *, database: Database | None = None) -> Flask:
    """Build the agent API; every route but /healthz needs a bearer token."""
    from agent_service import admin, auth, connections, health, openapi

    app = Flask(__name__)
    app.config["HAPEX"] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]
    db = database or Database(config.database_url, config.pool, name="hapex-agent").open()
    app.extensions["hapex_db"] = db

    access_log.install(app)
    register_json_errors(app)
    auth.install(app, config)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(connections.blueprint)
    app.register_blueprint(admin.blueprint)
    return app
