"""The local provider sandbox that `make run` serves beside Hapex (never in production).

A real OAuth 2.0 authorization server for each OAuth provider in the catalog, provider-shaped
APIs holding a small business's sample data, pages showing what the automations did there,
and a stand-in for the Anthropic Messages API. Hapex's services reach it only through their
ordinary configuration (hapex.sandbox.wiring), with the same code paths as the real providers.
"""

from __future__ import annotations

from flask import Flask

from hapex.sandbox import claude, google, oauth, others, slack, views, wiring
from hapex.sandbox.state import Store
from hapex.settings import SandboxSettings


def create_app(settings: SandboxSettings, store: Store | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SANDBOX_SECRET=settings.secret, SANDBOX_BASE_URL=settings.base_url,
                      SANDBOX_ANTHROPIC_KEY=wiring.anthropic_api_key(settings.secret))
    store = store or Store(settings.state_file)
    app.extensions["sandbox_store"] = store
    app.extensions["sandbox_servers"] = oauth.build_servers(
        store, base_url=settings.base_url, secret=settings.secret, intake_url=settings.intake_url,
        access_seconds=settings.access_token_seconds)
    for blueprint in (views.bp, oauth.bp, google.bp, slack.bp, others.bp, claude.bp):
        app.register_blueprint(blueprint)

    @app.after_request
    def headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        return response

    return app
