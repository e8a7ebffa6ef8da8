"""Public pages: home, the security statement, data and privacy, security.txt, privacy and terms.

The intake serves them, and `hapex site build` renders the same views to static files for a CDN
(intake/public_site.py); nothing here may depend on a database, a session or a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, render_template, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from intake.accounts import sessions, throttle
from intake.config import IntakeConfig
from shared.catalog import Catalog
from shared.passwords import (
    MIN_PASSWORD_LENGTH,
    OWASP_MINIMUM_MEMORY_KIB,
    OWASP_MINIMUM_TIME_COST,
    Passwords,
)

blueprint = Blueprint("pages", __name__)

SECURITY_CONTACT = "mailto:security@hapex.ai"
# RFC 9116 asks for an Expires under a year ahead; computed per request, it never lapses.
SECURITY_TXT_LIFETIME = timedelta(days=180)


@dataclass(frozen=True)
class StaticSite:
    """Present (app.extensions["hapex_static_site"]) only while `hapex site build` renders these pages."""

    # Where the static site is served: security.txt's Policy and Canonical name it, not the intake.
    origin: str | None = None
    # The operator's own privacy notice and terms (HTML fragments, checked by the build); None: the placeholder.
    privacy: Markup | None = None
    terms: Markup | None = None


def static_site() -> StaticSite | None:
    site: StaticSite | None = current_app.extensions.get("hapex_static_site")
    return site


@blueprint.get("/")
def index() -> ResponseReturnValue:
    return render_template("index.html")


def security_facts() -> dict[str, object]:
    """The numbers the security page states, read from the running code and configuration."""
    config: IntakeConfig = current_app.config["HAPEX"]
    passwords: Passwords = current_app.extensions["hapex_passwords"]
    return {
        "argon2_memory_mib": passwords.memory_cost_kib // 1024,
        "argon2_time_cost": passwords.time_cost,
        "argon2_parallelism": passwords.parallelism,
        "argon2_meets_owasp": (
            passwords.memory_cost_kib >= OWASP_MINIMUM_MEMORY_KIB
            and passwords.time_cost >= OWASP_MINIMUM_TIME_COST
        ),
        "min_password_length": MIN_PASSWORD_LENGTH,
        "account_limit": throttle.ACCOUNT_LIMIT,
        "address_limit": throttle.ADDRESS_LIMIT,
        "window_minutes": int(throttle.WINDOW.total_seconds() // 60),
        "lockout_minutes": int(throttle.LOCKOUT.total_seconds() // 60),
        "session_bits": sessions.TOKEN_BYTES * 8,
        "session_cookie": sessions.cookie_name(config),
        "secure_cookies": config.secure_cookies,
        "tls_by_proxy": config.tls_by_proxy,
        "idle_minutes": config.session_idle_minutes,
        "absolute_hours": config.session_absolute_hours,
    }


@blueprint.get("/security")
def security() -> ResponseReturnValue:
    return render_template("security.html", facts=security_facts())


@blueprint.get("/data-and-privacy")
def data_and_privacy() -> ResponseReturnValue:
    catalog: Catalog = current_app.extensions["hapex_catalog"]
    return render_template("data_and_privacy.html", catalog=catalog)


@blueprint.get("/.well-known/security.txt")
def security_txt() -> ResponseReturnValue:
    """RFC 9116. Canonical and Policy come from INTAKE_PUBLIC_URL, never from the request's Host or
    X-Forwarded-Host: a forged header must not make Hapex publish someone else's address; without
    a configured public URL they are left out (both are optional)."""
    config: IntakeConfig = current_app.config["HAPEX"]
    site = static_site()
    public_origin = site.origin if site is not None else config.public_url
    expires = (datetime.now(UTC) + SECURITY_TXT_LIFETIME).replace(microsecond=0)
    lines = [
        f"Contact: {SECURITY_CONTACT}",
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}",
    ]
    if public_origin:
        origin = public_origin.rstrip("/")
        lines += [f"Policy: {origin}{url_for('pages.security')}",
                  f"Canonical: {origin}{url_for('pages.security_txt')}"]
    lines.append("Preferred-Languages: en")
    return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@blueprint.get("/privacy")
def privacy() -> ResponseReturnValue:
    site = static_site()
    return render_template("legal.html", title="Privacy notice", kind="privacy notice",
                           text=site.privacy if site is not None else None)


@blueprint.get("/terms")
def terms() -> ResponseReturnValue:
    site = static_site()
    return render_template("legal.html", title="Terms of service", kind="terms of service",
                           text=site.terms if site is not None else None)
