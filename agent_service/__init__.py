"""The agent service: internal JSON API and the workers that run automations."""

from __future__ import annotations

from flask import Flask

from agent_service.config import AgentConfig
from shared import access_log, forwarded, request_input
from shared.db import Database
from shared.errors import register_json_errors
from shared.passwords import Passwords


def create_app(config: AgentConfig, *, database: Database | None = None) -> Flask:
    """Build the agent API; every route but /healthz needs a bearer token.

    Opening the vault checks that every stored credential is under a key this process holds.
    """
    from agent_service import auth, health, openapi
    from agent_service.admin import views as admin
    from agent_service.chat import views as chat
    from agent_service.connections import views as connections
    from agent_service.passkeys import views as passkeys
    from agent_service.runs import views as runs
    from agent_service.runtime import AgentRuntime
    from agent_service.second_factor import views as second_factor
    from agent_service.sign_in import views as sign_in
    from agent_service.vault import startup as vault_startup

    app = Flask(__name__)
    app.config["HAPEX"] = config
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # the largest body is an API key (4 KiB); chat replies send {}
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask's default provider has it
    db = database or Database(config.database_url, config.pool, name="hapex-agent").open()
    app.extensions["hapex_db"] = db
    vault = vault_startup.open_vault(config, db)
    vault_startup.install(app, vault)
    app.extensions["hapex_runtime"] = AgentRuntime.build(db, vault, config)
    app.extensions["hapex_passwords"] = Passwords(config.password_hash_profile)

    access_log.install(app)
    forwarded.install(app, trusted_proxy_count=config.transport.trusted_proxy_count,
                      tls_by_proxy=config.transport.tls_by_proxy)
    request_input.install(app)  # first: unusable input is refused before sessions, tokens or CSRF
    register_json_errors(app)
    auth.install(app, config)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(connections.blueprint)
    app.register_blueprint(runs.blueprint)
    app.register_blueprint(chat.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(second_factor.blueprint)
    app.register_blueprint(sign_in.blueprint)
    app.register_blueprint(sign_in.account_blueprint)
    app.register_blueprint(passkeys.blueprint)
    app.register_blueprint(passkeys.sign_in_blueprint)
    return app
