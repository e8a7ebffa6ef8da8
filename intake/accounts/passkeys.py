"""Passkeys on the intake's pages: add, list and remove them, and sign in with one.

The agent draws every challenge, verifies every answer and, for a sign-in, starts the session and
answers its secret (agent_service/passkeys); these views only render the pages, hand the browser's
answer on (with the pending sign-in's ticket, as the second step) and set the cookie. A passkey
page carries the agent's options in a data attribute and loads one small static script
(static/passkeys.js), allowed by a nonce on that page alone (security_headers.allow_script); every
other page stays script-free, and signing in never needs it: password and a code (or a recovery
code) still work without JavaScript.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from intake.accounts import email_links, repository, sessions
from intake.accounts.second_factor import (
    AGENT_UNREACHABLE,
    PENDING_FOR,
    WRONG_CODE,
    _pending,
    forget_recovery_codes_if_no_factor,
    new_recovery_codes,
    proves_second_factor,
)
from intake.accounts.views import (
    TOO_MANY_ATTEMPTS,
    _account_page,
    _check_password,
    _current_account,
    _signed_in,
    _status_for,
    blueprint,
    throttle,
)
from intake.agent_client import AgentError, AgentRefused, SignIn
from intake.config import IntakeConfig
from intake.db import get_agent, get_db
from intake.security_headers import allow_script
from shared.db import tenant_transaction
from shared.passwords import hash_recovery_code
from shared.request_input import load_json

logger = logging.getLogger(__name__)

MAX_CREDENTIAL_CHARS = 16_384
PASSKEY_REFUSED = "That passkey was not accepted. Try again, or use your password and a code."
UNAVAILABLE = "Passkeys are not available on this deployment."


def available() -> bool:
    """Passkeys are bound to INTAKE_PUBLIC_URL (`make run` sets it); without it they are not offered."""
    config: IntakeConfig = current_app.config["HAPEX"]
    return config.public_url is not None


def _credential() -> dict[str, Any] | None:
    """The browser's PublicKeyCredential, as the page's script put it in the form; None if unusable."""
    raw = request.form.get("credential", "")
    if not raw or len(raw) > MAX_CREDENTIAL_CHARS:
        return None
    try:
        value = load_json(raw)  # deep nesting is refused there (json.loads raises RecursionError, not ValueError)
    except ValueError:  # UnreadableJSON is one
        return None
    return value if isinstance(value, dict) else None


def _ceremony(template: str, *, mode: str, options: dict[str, Any], action: str, status: int = 200,
              **context: Any) -> ResponseReturnValue:
    """A page that runs navigator.credentials.create() or .get() with the agent's options."""
    return render_template(template, mode=mode, options=json.dumps(options), action=action,
                           script_nonce=allow_script(), **context), status


# adding a passkey (signed in)

@blueprint.post("/account/passkeys/new")
def new_passkey() -> ResponseReturnValue:
    account = _current_account()
    identity = g.identity
    label = (request.form.get("label") or "").strip()
    if not available():
        return _account_page(account, passkey_error=UNAVAILABLE), 409
    if not 1 <= len(label) <= 60 or any(ord(c) < 32 for c in label):
        return _account_page(account, passkey_error="Name the passkey (up to 60 characters), e.g. “Work laptop”."), 400
    # A passkey signs in without the password and outlives a password reset: a session alone (a stolen
    # cookie) must not add one, so the password comes first, as for removing one. Without this step's
    # challenge, the agent refuses any registration.
    problem = _check_password(account, request.form.get("password", "")[:1024])
    if problem:
        return _account_page(account, passkey_error=problem), _status_for(problem)
    try:
        options = get_agent().passkey_registration_options(identity.client_id, identity.user_id,
                                                           account_name=account["email"])
    except AgentError:
        return _account_page(account, passkey_error=AGENT_UNREACHABLE), 503
    return _ceremony("accounts/passkey_register.html", mode="create", options=options,
                     action=url_for("accounts.register_passkey"), label=label)


@blueprint.post("/account/passkeys")
def register_passkey() -> ResponseReturnValue:
    account = _current_account()
    identity = g.identity
    credential = _credential()
    label = (request.form.get("label") or "").strip()[:60] or "Passkey"
    if credential is None:
        return _account_page(account, passkey_error="Your browser did not create a passkey. Try again."), 400
    with tenant_transaction(get_db(), identity.client_id) as conn:
        had_factor = repository.has_second_factor(conn, client_id=identity.client_id, user_id=identity.user_id)
    try:
        get_agent().register_passkey(identity.client_id, identity.user_id, credential=credential, label=label)
    except AgentRefused as refused:
        message = ("This passkey is already registered." if refused.name == "passkey_already_registered"
                   else "That passkey could not be verified; nothing was added. Try again.")
        return _account_page(account, passkey_error=message), 400
    except AgentError:
        return _account_page(account, passkey_error=AGENT_UNREACHABLE), 503
    email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id, kind="passkey_added")
    logger.info("passkey added", extra={"client_id": identity.client_id, "user_id": identity.user_id})
    if not had_factor:
        # The first second factor: recovery codes for the day the device is lost, shown once.
        codes = new_recovery_codes()
        with tenant_transaction(get_db(), identity.client_id) as conn:
            repository.replace_recovery_codes(conn, client_id=identity.client_id, user_id=identity.user_id,
                                              code_hashes=[hash_recovery_code(c) for c in codes])
        return render_template("accounts/recovery_codes.html", codes=codes)
    flash("Your passkey was added. We emailed you about the change.")
    return redirect(url_for("accounts.account"), 303)


# removing one: a fresh proof, the password and a code or a passkey

def _own_passkey(passkey_id: uuid.UUID) -> dict[str, Any]:
    identity = g.identity
    with tenant_transaction(get_db(), identity.client_id) as conn:
        passkeys = repository.list_passkeys(conn, client_id=identity.client_id, user_id=identity.user_id)
    found = next((p for p in passkeys if p["passkey_id"] == passkey_id), None)
    if found is None:
        abort(404)
    return found


def _removal_page(passkey: dict[str, Any], *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    identity = g.identity
    try:
        options = get_agent().passkey_proof_options(identity.client_id, identity.user_id)
    except AgentError:
        # The code still works without the agent's options; the passkey button is not offered.
        return render_template("accounts/passkey_remove.html", passkey=passkey, error=error or AGENT_UNREACHABLE,
                               options=None, mode="get", script_nonce=allow_script(),
                               action=url_for("accounts.remove_passkey", passkey_id=passkey["passkey_id"])), 503
    return _ceremony("accounts/passkey_remove.html", mode="get", options=options,
                     action=url_for("accounts.remove_passkey", passkey_id=passkey["passkey_id"]),
                     passkey=passkey, error=error, status=status)


@blueprint.route("/account/passkeys/<uuid:passkey_id>/remove", methods=["GET", "POST"])
def remove_passkey(passkey_id: uuid.UUID) -> ResponseReturnValue:
    account = _current_account()
    identity = g.identity
    passkey = _own_passkey(passkey_id)
    if request.method == "GET":
        return _removal_page(passkey)
    problem = _check_password(account, request.form.get("password", "")[:1024])
    if problem:
        return _removal_page(passkey, error=problem, status=_status_for(problem))
    buckets = throttle().buckets(email=str(identity.user_id), address=request.remote_addr, purpose="second-factor")
    if not throttle().begin_attempt(buckets):
        return _removal_page(passkey, error=TOO_MANY_ATTEMPTS, status=429)
    credential = _credential()
    code = (request.form.get("code") or "").strip().replace(" ", "").replace("-", "")[:32]
    try:
        if credential is not None:
            proved = get_agent().check_passkey_proof(identity.client_id, identity.user_id, credential)
        else:
            proved = len(code) >= 6 and proves_second_factor(identity.client_id, identity.user_id, code)
        if proved:
            get_agent().remove_passkey(identity.client_id, identity.user_id, passkey_id)
    except AgentError:
        return _removal_page(passkey, error=AGENT_UNREACHABLE, status=503)
    if not proved:
        return _removal_page(passkey, error=PASSKEY_REFUSED if credential is not None else WRONG_CODE, status=400)
    throttle().record_success(buckets)
    forget_recovery_codes_if_no_factor(identity.client_id, identity.user_id)
    email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id, kind="passkey_removed")
    logger.info("passkey removed", extra={"client_id": identity.client_id, "user_id": identity.user_id})
    flash("The passkey was removed. We emailed you about the change.")
    return redirect(url_for("accounts.account"), 303)


# signing in: instead of the password, or as the second step after it

def _signed_in_with(result: SignIn) -> ResponseReturnValue:
    """The session the agent started for the passkey: its secret becomes this browser's cookie."""
    assert result.client_id is not None and result.user_id is not None and result.session is not None
    logger.info("login", extra={"client_id": result.client_id, "user_id": result.user_id})
    return _signed_in(result.client_id, result.session, url_for("automations.automations"))


def _accepted(result: SignIn) -> bool:
    return (result.outcome == "signed_in" and result.session is not None and result.client_id is not None
            and result.user_id is not None)


@blueprint.post("/login/passkey")
def passkey_login() -> ResponseReturnValue:
    """The login page's "Sign in with a passkey": a page that asks the browser for any passkey of this site."""
    if g.get("identity"):
        return redirect(url_for("automations.automations"), 303)
    if not available():
        flash(UNAVAILABLE)
        return redirect(url_for("accounts.login"), 303)
    buckets = throttle().buckets(email=None, address=request.remote_addr, purpose="passkey")
    if throttle().is_locked(buckets):
        flash(TOO_MANY_ATTEMPTS)
        return redirect(url_for("accounts.login"), 303)
    try:
        options = get_agent().passkey_sign_in_options()
    except AgentError:
        flash(AGENT_UNREACHABLE)
        return redirect(url_for("accounts.login"), 303)
    return _ceremony("accounts/passkey_sign_in.html", mode="get", options=options,
                     action=url_for("accounts.passkey_login_finish"), second_step=False)


@blueprint.post("/login/passkey/finish")
def passkey_login_finish() -> ResponseReturnValue:
    credential = _credential()
    buckets = throttle().buckets(email=None, address=request.remote_addr, purpose="passkey")
    if not throttle().begin_attempt(buckets):
        flash(TOO_MANY_ATTEMPTS)
        return redirect(url_for("accounts.login"), 303)
    try:
        # The agent verifies the assertion (with user verification) and starts the session itself.
        result = (get_agent().passkey_sign_in(credential, session=sessions.new_session_settings())
                  if credential is not None else SignIn("refused"))
    except AgentError:
        flash(AGENT_UNREACHABLE)
        return redirect(url_for("accounts.login"), 303)
    if not _accepted(result):
        logger.info("login refused", extra={"status": "passkey_refused"})
        flash(PASSKEY_REFUSED)
        return redirect(url_for("accounts.login"), 303)
    throttle().record_success(buckets)
    return _signed_in_with(result)


@blueprint.post("/login/code/passkey")
def second_factor_passkey() -> ResponseReturnValue:
    """The second step with a passkey instead of a code, within the same five minutes as the code."""
    pending = _pending()
    if pending is None:
        flash(f"Log in again: the step for your code has expired (it lasts {PENDING_FOR // 60} minutes).")
        return redirect(url_for("accounts.login"), 303)
    client_id, _user_id, ticket = pending
    try:
        options = get_agent().passkey_sign_in_options(client_id, ticket=ticket)
    except AgentError:
        flash(AGENT_UNREACHABLE)
        return redirect(url_for("accounts.second_factor_login"), 303)
    return _ceremony("accounts/passkey_sign_in.html", mode="get", options=options,
                     action=url_for("accounts.second_factor_passkey_finish"), second_step=True)


@blueprint.post("/login/code/passkey/finish")
def second_factor_passkey_finish() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        flash("Log in again: the step for your code has expired.")
        return redirect(url_for("accounts.login"), 303)
    client_id, user_id, ticket = pending
    buckets = throttle().buckets(email=str(user_id), address=request.remote_addr, purpose="second-factor")
    if not throttle().begin_attempt(buckets):
        flash(TOO_MANY_ATTEMPTS)
        return redirect(url_for("accounts.second_factor_login"), 303)
    credential = _credential()
    try:
        # The agent checks the pending sign-in's ticket and its user's passkey, spends both, starts the session.
        result = (get_agent().passkey_sign_in(credential, session=sessions.new_session_settings(),
                                              client_id=client_id, ticket=ticket)
                  if credential is not None else SignIn("refused"))
    except AgentError:
        flash(AGENT_UNREACHABLE)
        return redirect(url_for("accounts.second_factor_login"), 303)
    if not _accepted(result) or (result.client_id, result.user_id) != (client_id, user_id):
        logger.info("login refused", extra={"status": "wrong_second_factor", "client_id": client_id})
        flash(PASSKEY_REFUSED)
        return redirect(url_for("accounts.second_factor_login"), 303)
    throttle().record_success(buckets)
    return _signed_in_with(result)
