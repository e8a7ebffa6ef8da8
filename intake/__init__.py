"""The intake web app: what a client sees and uses."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from intake.agent_client import AgentClient
from intake.config import IntakeConfig
from shared import access_log
from shared.db import Database


def create_app(
    config: IntakeConfig,
    *,
    database: Database | None = None,
    agent: AgentClient | None = None,
) -> Flask:
    """Build the intake app; deny-by-default sessions arrive with the accounts module."""
    from intake import health, pages, security_headers

    app = Flask(__name__)
    app.config.update(
        HAPEX=config,
        SECRET_KEY=config.session_secret.reveal(),
        PREFERRED_URL_SCHEME="https",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if config.trusted_proxy_count:
        n = config.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.extensions["hapex_db"] = database or Database(
        config.database_url, config.pool, name="hapex-intake"
    ).open()
    app.extensions["hapex_agent"] = agent or AgentClient(config)

    access_log.install(app)
    security_headers.install(app, hsts=config.secure_cookies)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(pages.blueprint)
    return app
