"""The intake web app: what a client sees and uses."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from intake.agent_client import AgentClient
from intake.config import IntakeConfig
from shared import access_log, forwarded, request_input
from shared.catalog import CATALOG, POLL_TRIGGERS, Catalog
from shared.db import Database


def create_app(
    config: IntakeConfig,
    *,
    database: Database | None = None,
    agent: AgentClient | None = None,
    catalog: Catalog | None = None,
) -> Flask:
    """Build the intake app: deny-by-default sessions, CSRF on every state change."""
    from intake import auth, errors, health, pages, security_headers
    from intake.account_data import blueprint as account_data_blueprint
    from intake.accounts import blueprint as accounts_blueprint
    from intake.accounts.email_links import LINK_PREFIX, email_unverified
    from intake.accounts.sessions import csrf_cookie_name
    from intake.accounts.throttle import LoginThrottle
    from intake.automations import blueprint as automations_blueprint
    from intake.automations import hooks_blueprint
    from intake.chat import blueprint as chat_blueprint
    from intake.connections import blueprint as connections_blueprint
    from shared.passwords import Passwords

    app = Flask(__name__)
    secret = config.session_secret.reveal()
    app.config.update(
        HAPEX=config,
        SECRET_KEY=secret,
        PREFERRED_URL_SCHEME="https",
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Flask's own signed cookie holds only the CSRF secret and one-shot notices;
        # the login session is server-side (intake.accounts.sessions).
        SESSION_COOKIE_NAME=csrf_cookie_name(config),
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        WTF_CSRF_TIME_LIMIT=config.session_absolute_hours * 3600,
    )
    db = database or Database(config.database_url, config.pool, name="hapex-intake").open()
    app.extensions["hapex_db"] = db
    app.extensions["hapex_agent"] = agent or AgentClient(config)
    # The catalog as this deployment names and serves its providers (resolved once, in the config).
    app.extensions["hapex_catalog"] = catalog or Catalog(config.providers.providers.values(), CATALOG.capabilities)
    app.extensions["hapex_passwords"] = Passwords(config.password_hash_profile)
    throttle_key = hmac.new(secret.encode(), b"hapex login throttle", hashlib.sha256).digest()
    app.extensions["hapex_login_throttle"] = LoginThrottle(db, throttle_key)

    access_log.install(app, secret_prefixes=("/hooks/", LINK_PREFIX))
    forwarded.install(app, trusted_proxy_count=config.trusted_proxy_count, tls_by_proxy=config.tls_by_proxy,
                      https_origin=config.public_url)
    request_input.install(app)  # first: unusable input is refused before sessions, tokens or CSRF
    auth.install(app)
    csrf = CSRFProtect(app)
    # Called by other systems with a secret URL, not by a browser holding a session.
    csrf.exempt(hooks_blueprint)
    security_headers.install(app, hsts=config.secure_cookies)
    errors.install(app)
    app.jinja_env.globals["email_unverified"] = email_unverified
    app.jinja_env.filters["usd"] = format_microusd
    app.jinja_env.filters["when"] = format_when
    app.jinja_env.globals["trigger_label"] = trigger_label
    app.register_blueprint(health.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(accounts_blueprint)
    app.register_blueprint(account_data_blueprint)
    app.register_blueprint(automations_blueprint)
    app.register_blueprint(hooks_blueprint)
    app.register_blueprint(chat_blueprint)
    app.register_blueprint(connections_blueprint)
    return app


def format_microusd(amount: int | None) -> str:
    """Millionths of a dollar as dollars, to the cent above one dollar and finer below."""
    if amount is None:
        return "–"
    dollars = amount / 1_000_000
    return f"${dollars:,.2f}" if dollars >= 1 or dollars == 0 else f"${dollars:.4f}"


def trigger_label(kind: str, source: str | None = None) -> str:
    """How a run started, as people read it: a poll by its source's title ("New email in Gmail")."""
    if kind == "poll":
        poll = POLL_TRIGGERS.get(source or "")
        return poll.title if poll else "A new item"
    return kind


def format_when(moment: datetime | None, zone: str | None = None) -> str:
    """A time as the client reads it: in the automation's own time zone when it has one, else UTC."""
    if moment is None:
        return "–"
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    if zone and zone != "UTC":
        try:
            local = moment.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            local = None
        if local is not None:
            return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone) + f" ({zone})"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
