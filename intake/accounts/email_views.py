"""The pages behind account emails: confirm an address, forgot and reset a password, send again."""

from __future__ import annotations

import logging

from flask import flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from intake.accounts import email_links, repository, sessions
from intake.accounts.email_links import AccountLink
from intake.accounts.forms import ChangeEmailForm, ConfirmForm, ForgotPasswordForm, ResetPasswordForm
from intake.accounts.views import TOO_MANY_ATTEMPTS, blueprint, passwords, throttle
from intake.agent_client import AgentError
from intake.db import get_agent, get_db
from shared.db import AlreadyExists, tenant_transaction

logger = logging.getLogger(__name__)

FORGOT_SENT = (
    "If an account uses this address, we sent it an email with a link to choose a new password. "
    "The link works once, within 30 minutes."
)
LINK_UNUSABLE = (
    "This link has expired, was already used, or was replaced by a newer one, so nothing was changed. "
    "Ask for a new email and use its link."
)
SIGNED_IN_AS_ANOTHER = (
    "This invitation is for someone else than the account you are signed in with, so nothing was changed. "
    "Log out, then open the link again."
)
ADDRESS_TAKEN = "That address now belongs to another Hapex account, so your address was not changed."
CHANGE_SENT = ("We sent a link to {email}. Your account keeps its current address until that link is used, "
               "within 24 hours.")
RESEND_SENT = "We sent the confirmation email again. It can take a minute to arrive."
RESEND_LIMIT = "We already sent several confirmation emails lately. Wait 15 minutes, then ask again."


@blueprint.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    """The same answer whether or not the address has an account; throttled as login is."""
    form = ForgotPasswordForm()
    if not form.is_submitted():
        return render_template("accounts/forgot.html", form=form)
    if not form.validate():
        return render_template("accounts/forgot.html", form=form), 400
    buckets = throttle().buckets(email=form.email.data, address=request.remote_addr, purpose="reset")
    if not throttle().begin_attempt(buckets):
        return render_template("accounts/forgot.html", form=form, error=TOO_MANY_ATTEMPTS), 429
    with get_db().transaction() as conn:
        found = repository.find_account(conn, email=form.email.data)
    if found is not None:
        email_links.queue_email(get_db(), client_id=found["client_id"], user_id=found["user_id"],
                                kind="reset_password")
    flash(FORGOT_SENT)
    return redirect(url_for("accounts.forgot_password"), 303)


def _unusable() -> ResponseReturnValue:
    return render_template("accounts/link_unusable.html", message=LINK_UNUSABLE), 410


def _open_link(token: str) -> AccountLink | None:
    link = email_links.find_link(get_db(), token)
    return link if link is not None and link.live else None


@blueprint.route(email_links.LINK_PREFIX + "<token>", methods=["GET", "POST"])
def email_link(token: str) -> ResponseReturnValue:
    """Opening a link shows what it will do; only submitting that page uses it (once)."""
    link = _open_link(token)
    if link is None:
        return _unusable()
    if link.kind == "verify_email":
        return _verify_email(link, token)
    if link.kind in ("reset_password", "invitation"):
        return _reset_password(link, token)
    if link.kind == "verify_new_email":
        return _confirm_new_email(link, token)
    return _unusable()


def _confirm_new_email(link: AccountLink, token: str) -> ResponseReturnValue:
    """The new address is the account's once its own link is used; the old one is told."""
    form = ConfirmForm()
    if not form.is_submitted():
        return render_template("accounts/verify_email.html", form=form, token=token, new_address=True)
    if not form.validate():
        return render_template("accounts/verify_email.html", form=form, token=token, new_address=True), 400
    try:
        with get_db().transaction() as conn:
            # The token itself (whose hash only the worker set) proves the link; the old address is told.
            changed = repository.change_email_by_link(conn, token=token)
    except AlreadyExists:
        return render_template("accounts/link_unusable.html", message=ADDRESS_TAKEN), 409
    if changed is None:
        return _unusable()
    logger.info("email address changed", extra={"client_id": link.client_id, "user_id": link.user_id})
    flash("Your new email address is confirmed and is now your account's.")
    return redirect(url_for("accounts.account" if g.get("identity") else "accounts.login"), 303)


def _verify_email(link: AccountLink, token: str) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.is_submitted():
        return render_template("accounts/verify_email.html", form=form, token=token)
    if not form.validate():
        return render_template("accounts/verify_email.html", form=form, token=token), 400
    with tenant_transaction(get_db(), link.client_id) as conn:
        user_id = repository.use_account_link(conn, client_id=link.client_id, email_id=link.email_id,
                                              kind=link.kind)
        if user_id is None:
            return _unusable()
        repository.mark_email_verified(conn, client_id=link.client_id, user_id=user_id)
        repository.void_account_links(conn, client_id=link.client_id, user_id=user_id, kind=link.kind)
    logger.info("email address verified", extra={"client_id": link.client_id, "user_id": user_id})
    flash("Your email address is confirmed. Thank you.")
    target = "accounts.account" if g.get("identity") else "accounts.login"
    return redirect(url_for(target), 303)


def _reset_password(link: AccountLink, token: str) -> ResponseReturnValue:
    """A reset link, or an invitation's (whose user has no password anyone knows yet): choose one."""
    invitation = link.kind == "invitation"
    identity = g.get("identity")
    if invitation and identity is not None and identity.user_id != link.user_id:
        # An invitation is for the person it was sent to: it never joins another signed-in account to the business.
        return render_template("accounts/link_unusable.html", message=SIGNED_IN_AS_ANOTHER), 409
    form = ResetPasswordForm()
    if not form.is_submitted():
        return render_template("accounts/reset_password.html", form=form, token=token, invitation=invitation)
    if not form.validate():
        return render_template("accounts/reset_password.html", form=form, token=token, invitation=invitation), 400
    new_hash = passwords().hash(form.new_password.data)
    with get_db().transaction() as conn:
        # The token itself (whose hash only the worker set) proves the link: the password is set, every
        # session of the user ends, their other links stop and the address counts as confirmed.
        used = repository.set_password_by_link(conn, token=token, password_hash=new_hash)
    if used is None:
        return _unusable()
    user_id, ended = used["user_id"], used["sessions_ended"]
    if invitation:
        logger.info("invitation accepted", extra={"client_id": link.client_id, "user_id": user_id})
        session.clear()
        flash("Welcome to Hapex. Log in with the password you chose.")
        return redirect(url_for("accounts.login"), 303)
    email_links.queue_email(get_db(), client_id=link.client_id, user_id=user_id, kind="password_changed")
    logger.info("password reset", extra={"client_id": link.client_id, "user_id": user_id, "count": ended})
    g.identity = None
    session.clear()
    flash("Your password was changed and every session of your account was signed out. Log in with the new "
          "password.")
    response = redirect(url_for("accounts.login"), 303)
    sessions.clear_cookie(response)
    return response


@blueprint.post("/account/email")
def change_email() -> ResponseReturnValue:
    """Ask to move the account to a new address: nothing changes until the link sent there is used."""
    from intake.accounts.views import CHECK_UNAVAILABLE, WRONG_PASSWORD, _account_page, _current_account

    account = _current_account()
    form = ChangeEmailForm()
    if not form.validate():
        return _account_page(account, email_form=form), 400
    buckets = throttle().buckets(email=account["email"], address=request.remote_addr)
    if not throttle().begin_attempt(buckets):
        return _account_page(account, email_form=form, email_error=TOO_MANY_ATTEMPTS), 429
    identity = g.identity
    try:
        # Sent whether or not the address has an account: the answer does not tell (the link then says so).
        # The agent asks for it, having checked the password again: the intake's role cannot email another address.
        outcome = get_agent().request_email_change(identity.client_id, identity.user_id,
                                                   password=form.email_password.data, new_email=form.new_email.data,
                                                   link_base=email_links.link_origin() + email_links.LINK_PREFIX)
    except AgentError:
        return _account_page(account, email_form=form, email_error=CHECK_UNAVAILABLE), 503
    if outcome == "refused":
        return _account_page(account, email_form=form, email_error=WRONG_PASSWORD), 400
    throttle().record_success(buckets)
    flash(CHANGE_SENT.format(email=form.new_email.data) if outcome == "sent" else RESEND_LIMIT)
    return redirect(url_for("accounts.account"), 303)


@blueprint.post("/account/verify/resend")
def resend_verification() -> ResponseReturnValue:
    """Send the confirmation email again: a few per window per user, and counted per network."""
    form = ConfirmForm()
    if not form.validate():
        return redirect(url_for("accounts.account"), 303)
    identity = g.identity
    buckets = throttle().buckets(email=None, address=request.remote_addr, purpose="resend")
    if not throttle().begin_attempt(buckets):
        flash(RESEND_LIMIT)
        return redirect(url_for("accounts.account"), 303)
    with tenant_transaction(get_db(), identity.client_id) as conn:
        verified = repository.email_verified(conn, client_id=identity.client_id, user_id=identity.user_id)
    if verified:
        flash("Your email address is already confirmed.")
    elif email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id,
                                 kind="verify_email"):
        flash(RESEND_SENT)
    else:
        flash(RESEND_LIMIT)
    return redirect(url_for("accounts.account"), 303)
