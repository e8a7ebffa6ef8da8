"""Deny by default: every view needs a live session except the few named here."""

from __future__ import annotations

from flask import Flask, current_app, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from intake.accounts import email_links, sessions
from intake.agent_client import use_proof

# Views anyone may open. Everything else redirects to the login page.
OPEN_ENDPOINTS = frozenset(
    {
        "static",
        "health.healthz",
        "health.readyz",
        "pages.index",
        "pages.security",
        "pages.data_and_privacy",
        "pages.security_txt",
        "pages.privacy",
        "pages.terms",
        "accounts.login",
        "accounts.signup",
        "accounts.forgot_password",
        # The code step of a sign-in: its proof so far is the signed note the password step left.
        "accounts.second_factor_login",
        # A passkey in place of the code: the same signed note (intake.accounts.passkeys).
        "accounts.second_factor_passkey",
        "accounts.second_factor_passkey_finish",
        # A passkey in place of the password: the agent's verdict on its assertion is the proof.
        "accounts.passkey_login",
        "accounts.passkey_login_finish",
        # A link from an account email: its single-use token is the proof (intake.accounts.email_links).
        "accounts.email_link",
        # Another system calling an automation's secret webhook URL (intake.automations.hooks).
        "hooks.trigger",
    }
)


# What a user owing a second factor (the business requires one) may still open: enrolment and leaving.
ENROLMENT_ENDPOINTS = frozenset(
    {"accounts.second_factor_required", "accounts.enrol_second_factor", "accounts.confirm_second_factor",
     "accounts.new_passkey", "accounts.register_passkey", "accounts.logout"}
)


def install(app: Flask) -> None:
    @app.before_request
    def require_session() -> ResponseReturnValue | None:
        g.identity = None
        use_proof(None)  # load_identity sets the session's proof for this request's agent calls
        if request.endpoint in ("static", "health.healthz", "health.readyz"):
            return None
        g.identity = sessions.load_identity()
        if g.identity is not None:
            request.hapex_authenticated = True  # type: ignore[attr-defined]  # a flag for the after-request hook
        if request.endpoint is None or request.endpoint in OPEN_ENDPOINTS:
            return None
        if g.identity is None:
            return redirect(url_for("accounts.login"), 303)
        if request.endpoint not in ENROLMENT_ENDPOINTS and email_links.account_state()["second_factor_owed"]:
            # The business requires a second factor and this user has none yet: enrolment first.
            return redirect(url_for("accounts.second_factor_required"), 303)
        return None

    @app.after_request
    def drop_ended_session_cookie(response: Response) -> Response:
        if request.endpoint not in ("static", "health.healthz"):
            # What these pages show depends on who is signed in.
            response.vary.add("Cookie")
        if not g.get("drop_session_cookie"):
            return response
        name = sessions.cookie_name(current_app.config["HAPEX"]) + "="
        if not any(c.startswith(name) for c in response.headers.getlist("Set-Cookie")):
            sessions.clear_cookie(response)
        return response
