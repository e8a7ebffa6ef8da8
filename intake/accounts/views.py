"""Sign up, log in, log out, change password, delete account."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from intake.accounts import email_links, repository, sessions
from intake.accounts.forms import ChangeEmailForm, ChangePasswordForm, DeleteAccountForm, LoginForm, SignupForm
from intake.accounts.throttle import LoginThrottle
from intake.agent_client import AgentError
from intake.db import get_agent, get_db
from shared.db import AlreadyExists, tenant_transaction
from shared.passwords import Passwords
from shared.secret import Secret

logger = logging.getLogger(__name__)

blueprint = Blueprint("accounts", __name__)

# One message for an unknown email and a wrong password, so neither reveals the other.
WRONG_CREDENTIALS = "The email or password is incorrect."
WRONG_PASSWORD = "That password is not correct."  # noqa: S105 - a message, not a password
TOO_MANY_ATTEMPTS = "Too many failed attempts. Wait 15 minutes, then try again."
SIGNUP_SENT = (
    "Thank you. We sent an email to the address you gave: follow its link to confirm the address. "
    "You can log in now with the password you chose; until the address is confirmed you can look "
    "around, but not connect a service or turn on an automation."
)
AGENT_UNREACHABLE = (
    "We could not reach the service that holds your connections, so nothing was deleted. "
    "Please try again in a few minutes."
)
# Passwords are checked by the agent (docs/client-proof.md): when it cannot be reached, nothing is.
CHECK_UNAVAILABLE = "We could not check your password just now, so nothing was changed. Please try again in a moment."


def passwords() -> Passwords:
    return current_app.extensions["hapex_passwords"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def throttle() -> LoginThrottle:
    return current_app.extensions["hapex_login_throttle"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def _home() -> ResponseReturnValue:
    return redirect(url_for("automations.automations"), 303)


def _signed_in(client_id: uuid.UUID, secret: Secret, target: str) -> ResponseReturnValue:
    """A redirect that carries the session the agent started as the cookie; the CSRF secret is renewed with it."""
    session.clear()
    response = redirect(target, 303)
    sessions.adopt_session(response, client_id=client_id, secret=secret)
    return response


@blueprint.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """A new address gets an account and a link to confirm it; a taken one gets an email saying so.
    Both answer with the same page, so sign-up does not tell anyone which addresses have accounts."""
    if g.get("identity"):
        return _home()
    form = SignupForm()
    if not form.is_submitted():
        return render_template("accounts/signup.html", form=form)
    if not form.validate():
        return render_template("accounts/signup.html", form=form), 400
    buckets = throttle().buckets(email=None, address=request.remote_addr)
    if throttle().is_locked(buckets):
        return render_template("accounts/signup.html", form=form, error=TOO_MANY_ATTEMPTS), 429
    # Hashed before we know whether the email is free, so both answers take as long.
    password_hash = passwords().hash(form.password.data)
    client_id = uuid.uuid4()
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            user_id = repository.sign_up(conn, client_id=client_id, name=form.business_name.data,
                                         email=form.email.data, password_hash=password_hash)
    except AlreadyExists:
        throttle().record_failure(buckets)
        with get_db().transaction() as conn:
            existing = repository.find_account(conn, email=form.email.data)
        if existing is not None:
            email_links.queue_email(get_db(), client_id=existing["client_id"], user_id=existing["user_id"],
                                    kind="already_registered")
        return _signup_sent()
    email_links.queue_email(get_db(), client_id=client_id, user_id=user_id, kind="verify_email")
    logger.info("client signed up", extra={"client_id": client_id})
    return _signup_sent()


def _signup_sent() -> ResponseReturnValue:
    session.clear()
    flash(SIGNUP_SENT)
    return redirect(url_for("accounts.login"), 303)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if g.get("identity"):
        return _home()
    form = LoginForm()
    if not form.is_submitted():
        return render_template("accounts/login.html", form=form)
    if not form.validate():
        return render_template("accounts/login.html", form=form), 400
    buckets = throttle().buckets(email=form.email.data, address=request.remote_addr)
    if not throttle().begin_attempt(buckets):
        logger.info("login refused", extra={"status": "throttled"})
        return render_template("accounts/login.html", form=form, error=TOO_MANY_ATTEMPTS), 429
    try:
        # The agent checks the password (an unknown address costs the same) and starts the session.
        result = get_agent().sign_in(email=form.email.data, password=form.password.data,
                                     session=sessions.new_session_settings())
    except AgentError:
        return render_template("accounts/login.html", form=form, error=CHECK_UNAVAILABLE), 503
    if result.outcome == "refused" or result.client_id is None or result.user_id is None:
        logger.info("login refused", extra={"status": "wrong_credentials"})
        return render_template("accounts/login.html", form=form, error=WRONG_CREDENTIALS), 400
    throttle().record_success(buckets)
    client_id, user_id = result.client_id, result.user_id
    if result.outcome == "second_factor" and result.ticket is not None:
        from intake.accounts import second_factor

        return second_factor.begin_pending_sign_in(client_id, user_id, result.ticket)
    assert result.session is not None
    logger.info("login", extra={"client_id": client_id, "user_id": user_id})
    return _signed_in(client_id, result.session, url_for("automations.automations"))


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    sessions.end_current_session()
    session.clear()
    response = redirect(url_for("pages.index"), 303)
    sessions.clear_cookie(response)
    return response


def _current_account() -> dict[str, Any]:
    identity = g.identity
    with tenant_transaction(get_db(), identity.client_id) as conn:
        account = repository.get_account(conn, client_id=identity.client_id, user_id=identity.user_id)
    if account is None:
        abort(404)
    return account


def _account_page(
    account: dict[str, Any],
    *,
    password_form: ChangePasswordForm | None = None,
    delete_form: DeleteAccountForm | None = None,
    password_error: str | None = None,
    delete_error: str | None = None,
    second_factor_form: Any = None,
    second_factor_error: str | None = None,
    email_form: Any = None,
    email_error: str | None = None,
    passkey_error: str | None = None,
) -> str:
    from intake.accounts import second_factor
    from intake.accounts.forms import TurnOffSecondFactorForm

    return render_template(
        "accounts/account.html",
        account=account,
        **second_factor.account_page_facts(account["client_id"], account["user_id"]),
        sessions=sessions.list_sessions(account["client_id"], account["user_id"]),
        second_factor_form=second_factor_form or TurnOffSecondFactorForm(formdata=None),
        second_factor_error=second_factor_error,
        email_form=email_form or ChangeEmailForm(formdata=None),
        email_error=email_error,
        passkey_error=passkey_error,
        passkeys_available=current_app.config["HAPEX"].public_url is not None,
        password_form=password_form or ChangePasswordForm(formdata=None),
        delete_form=delete_form or DeleteAccountForm(formdata=None),
        password_error=password_error,
        delete_error=delete_error,
    )


@blueprint.get("/account")
def account() -> ResponseReturnValue:
    return _account_page(_current_account())


def _check_password(account: dict[str, Any], password: str) -> str | None:
    """None if the password is the account's (the agent checks it); else the message to show (and it is counted)."""
    buckets = throttle().buckets(email=account["email"], address=request.remote_addr)
    if not throttle().begin_attempt(buckets):
        return TOO_MANY_ATTEMPTS
    if not password:
        return WRONG_PASSWORD  # none given: no password matches (the agent refuses an empty one as malformed)
    try:
        matches = get_agent().check_password(account["client_id"], account["user_id"], password=password)
    except AgentError:
        return CHECK_UNAVAILABLE
    if not matches:
        return WRONG_PASSWORD
    throttle().record_success(buckets)
    return None


def _status_for(message: str) -> int:
    return {TOO_MANY_ATTEMPTS: 429, CHECK_UNAVAILABLE: 503}.get(message, 400)


@blueprint.post("/account/password")
def change_password() -> ResponseReturnValue:
    account = _current_account()
    form = ChangePasswordForm()
    if not form.validate():
        return _account_page(account, password_form=form), 400
    buckets = throttle().buckets(email=account["email"], address=request.remote_addr)
    if not throttle().begin_attempt(buckets):
        return _account_page(account, password_form=form, password_error=TOO_MANY_ATTEMPTS), 429
    identity = g.identity
    try:
        # The agent checks the current password, sets the new one, ends every session of the user and
        # starts this browser's next one.
        changed = get_agent().change_password(identity.client_id, identity.user_id,
                                              current_password=form.current_password.data,
                                              new_password=form.new_password.data,
                                              session=sessions.new_session_settings())
    except AgentError:
        return _account_page(account, password_form=form, password_error=CHECK_UNAVAILABLE), 503
    if not changed.changed or changed.session is None:
        return _account_page(account, password_form=form, password_error=WRONG_PASSWORD), 400
    throttle().record_success(buckets)
    email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id,
                            kind="password_changed")
    g.identity = None
    logger.info("password changed", extra={"client_id": identity.client_id, "count": changed.sessions_ended})
    response = _signed_in(identity.client_id, changed.session, url_for("accounts.account"))
    flash("Your password was changed, and every other session of your account was signed out.")
    return response


@blueprint.post("/account/sessions/end-all")
def sign_out_everywhere() -> ResponseReturnValue:
    """End every session of this user, this browser's included."""
    identity = g.identity
    with tenant_transaction(get_db(), identity.client_id) as conn:
        ended = sessions.end_user_sessions(conn, client_id=identity.client_id, user_id=identity.user_id)
    g.identity = None
    logger.info("signed out everywhere", extra={"client_id": identity.client_id, "count": ended})
    session.clear()
    flash("Every session of your account was signed out, this one included.")
    response = redirect(url_for("accounts.login"), 303)
    sessions.clear_cookie(response)
    return response


@blueprint.post("/account/delete")
def delete_account() -> ResponseReturnValue:
    account = _current_account()
    if account["role"] != "owner":
        abort(403)  # deleting the business is its owners' decision
    form = DeleteAccountForm()
    if not form.validate():
        return _account_page(account, delete_form=form), 400
    problem = _check_password(account, form.password.data)
    if problem:
        return _account_page(account, delete_form=form, delete_error=problem), _status_for(problem)
    client_id = g.identity.client_id
    # The agent revokes the client's connections first; if it cannot, nothing is deleted.
    try:
        get_agent().revoke_all_connections(client_id)
    except AgentError:
        logger.warning("account deletion postponed", extra={"client_id": client_id})
        return _account_page(account, delete_error=AGENT_UNREACHABLE), 503
    with tenant_transaction(get_db(), client_id) as conn:
        repository.delete_client(conn, client_id=client_id)
    g.identity = None
    logger.info("client deleted", extra={"client_id": client_id})
    session.clear()
    flash("Your account and everything it held have been deleted.")
    response = redirect(url_for("pages.index"), 303)
    sessions.clear_cookie(response)
    return response
