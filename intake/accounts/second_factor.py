"""A second factor: an authenticator app (TOTP) with ten single-use recovery codes.

The TOTP secret is a credential, and the intake may not hold the key that seals credentials: the
agent draws it, seals it with its vault and checks codes (agent_service/second_factor). The intake
sees the secret once, inside the otpauth:// URI it draws as a QR code for enrolment, and keeps
nothing of it. Recovery codes are 80 random bits each, shown once and kept as SHA-256 hashes.

Sign-in with a factor is two steps: the password (checked by the agent) starts no session, only a
pending sign-in ticket the agent draws and keeps hashed, held in this browser's own cookie for
PENDING_FOR; the agent checks the code with that ticket and only then starts the session.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import segno
from flask import flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from intake.accounts import email_links, repository, sessions
from intake.accounts.forms import EnrolConfirmForm, SecondFactorForm, TurnOffSecondFactorForm
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
from intake.agent_client import AgentError, AgentRefused
from intake.db import get_agent, get_db
from shared.db import tenant_transaction
from shared.passwords import hash_recovery_code
from shared.secret import Secret

logger = logging.getLogger(__name__)

PENDING_KEY = "second_factor"
PENDING_FOR = 300  # seconds between the password and the code
RECOVERY_CODES = 10
WRONG_CODE = "That code is not right, or was already used. Try the code your app shows now."
AGENT_UNREACHABLE = "We could not check the code just now; nothing was changed. Please try again in a moment."


def new_recovery_codes() -> list[str]:
    """Ten codes of 80 random bits, in base32 groups easy to copy: XXXX-XXXX-XXXX-XXXX."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def enrolled(client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    with tenant_transaction(get_db(), client_id) as conn:
        return repository.has_second_factor(conn, client_id=client_id, user_id=user_id)


def begin_pending_sign_in(client_id: uuid.UUID, user_id: uuid.UUID, ticket: Secret) -> ResponseReturnValue:
    """The agent found the password right and the user has a factor: no session yet, only the agent's
    pending sign-in ticket in this browser's cookie, which the code must come with."""
    session.clear()
    session[PENDING_KEY] = {"client_id": str(client_id), "user_id": str(user_id), "ticket": ticket.reveal(),
                            "at": int(time.time())}
    return redirect(url_for("accounts.second_factor_login"), 303)


def _pending() -> tuple[uuid.UUID, uuid.UUID, str] | None:
    note = session.get(PENDING_KEY)
    if not isinstance(note, dict) or int(note.get("at", 0)) < time.time() - PENDING_FOR:
        return None
    try:
        return uuid.UUID(note["client_id"]), uuid.UUID(note["user_id"]), str(note["ticket"])
    except (KeyError, TypeError, ValueError):
        return None


def proves_second_factor(client_id: uuid.UUID, user_id: uuid.UUID, code: str) -> bool:
    """A signed-in user's current, unused TOTP code (spent by the agent), or an unused recovery code (spent here)."""
    if code.isdigit() and len(code) == 6:
        try:
            return get_agent().check_totp(client_id, user_id, code=code, confirm=False)
        except AgentRefused:
            return False  # no authenticator app (a user with passkeys only)
    with tenant_transaction(get_db(), client_id) as conn:
        return repository.use_recovery_code(conn, client_id=client_id, user_id=user_id,
                                            code_hash=hash_recovery_code(code))


@blueprint.route("/login/code", methods=["GET", "POST"])
def second_factor_login() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        flash("Log in again: the step for your code has expired.")
        return redirect(url_for("accounts.login"), 303)
    client_id, user_id, ticket = pending
    form = SecondFactorForm()

    def page(error: str | None = None) -> str:
        # Every answer of this page offers the passkey way too, the one after a wrong code included.
        with tenant_transaction(get_db(), client_id) as conn:
            has_passkeys = bool(repository.list_passkeys(conn, client_id=client_id, user_id=user_id))
        return render_template("accounts/second_factor_login.html", form=form, has_passkeys=has_passkeys, error=error)

    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(), 400
    buckets = throttle().buckets(email=str(user_id), address=request.remote_addr, purpose="second-factor")
    if not throttle().begin_attempt(buckets):
        return page(TOO_MANY_ATTEMPTS), 429
    try:
        # The agent checks the ticket and the code (or recovery code), spends them, and starts the session.
        result = get_agent().finish_sign_in(client_id, ticket=ticket, code=form.code.data.strip(),
                                            session=sessions.new_session_settings())
    except AgentError:
        return page(AGENT_UNREACHABLE), 503
    if result.outcome != "signed_in" or result.session is None:
        logger.info("login refused", extra={"status": "wrong_second_factor", "client_id": client_id})
        return page(WRONG_CODE), 400
    throttle().record_success(buckets)
    logger.info("login", extra={"client_id": client_id, "user_id": user_id})
    return _signed_in(client_id, result.session, url_for("automations.automations"))


def _qr_svg(uri: str) -> Markup:
    # segno's SVG is markup it builds itself from the URI's bits: no script, no external reference.
    return Markup(segno.make(uri, error="m").svg_inline(scale=5, border=2))  # noqa: S704


@blueprint.post("/account/second-factor/enrol")
def enrol_second_factor() -> ResponseReturnValue:
    account = _current_account()
    identity = g.identity
    try:
        uri = get_agent().enrol_totp(identity.client_id, identity.user_id, account_name=account["email"])
    except AgentError:
        return _account_page(account, second_factor_error=AGENT_UNREACHABLE), 503
    revealed = uri.reveal()
    secret = parse_qs(urlsplit(revealed).query).get("secret", [""])[0]
    return render_template("accounts/second_factor_enrol.html", qr=_qr_svg(revealed), secret=secret,
                           form=EnrolConfirmForm(formdata=None))


CODE_DID_NOT_MATCH = ("That code did not match, so two-step sign-in is still off. Start again: remove the Hapex "
                      "entry from your app, then scan the new code.")


@blueprint.post("/account/second-factor/confirm")
def confirm_second_factor() -> ResponseReturnValue:
    account = _current_account()
    identity = g.identity
    form = EnrolConfirmForm()
    if not form.validate():
        return _account_page(account, second_factor_error="Enter the 6 digits your app shows, then start again."), 400
    try:
        accepted = get_agent().check_totp(identity.client_id, identity.user_id, code=form.code.data, confirm=True)
    except AgentError:
        return _account_page(account, second_factor_error=AGENT_UNREACHABLE), 503
    if not accepted:
        return _account_page(account, second_factor_error=CODE_DID_NOT_MATCH), 400
    codes = new_recovery_codes()
    with tenant_transaction(get_db(), identity.client_id) as conn:
        repository.replace_recovery_codes(conn, client_id=identity.client_id, user_id=identity.user_id,
                                          code_hashes=[hash_recovery_code(c) for c in codes])
    email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id,
                            kind="second_factor_on")
    logger.info("second factor turned on", extra={"client_id": identity.client_id, "user_id": identity.user_id})
    return render_template("accounts/recovery_codes.html", codes=codes)


@blueprint.post("/account/second-factor/off")
def turn_off_second_factor() -> ResponseReturnValue:
    """Needs a fresh proof of both: the password and a code (or a recovery code)."""
    account = _current_account()
    identity = g.identity
    form = TurnOffSecondFactorForm()
    if not form.validate():
        return _account_page(account, second_factor_form=form), 400
    problem = _check_password(account, form.factor_password.data)
    if problem:
        return _account_page(account, second_factor_form=form, second_factor_error=problem), _status_for(problem)
    buckets = throttle().buckets(email=str(identity.user_id), address=request.remote_addr, purpose="second-factor")
    if not throttle().begin_attempt(buckets):
        return _account_page(account, second_factor_form=form, second_factor_error=TOO_MANY_ATTEMPTS), 429
    try:
        proved = proves_second_factor(identity.client_id, identity.user_id, form.code.data)
        if proved:
            get_agent().remove_totp(identity.client_id, identity.user_id)
    except AgentError:
        return _account_page(account, second_factor_error=AGENT_UNREACHABLE), 503
    if not proved:
        return _account_page(account, second_factor_form=form, second_factor_error=WRONG_CODE), 400
    throttle().record_success(buckets)
    forget_recovery_codes_if_no_factor(identity.client_id, identity.user_id)
    email_links.queue_email(get_db(), client_id=identity.client_id, user_id=identity.user_id,
                            kind="second_factor_off")
    logger.info("second factor turned off", extra={"client_id": identity.client_id, "user_id": identity.user_id})
    flash("Two-step sign-in is off. We emailed you about the change.")
    return redirect(url_for("accounts.account"), 303)


def forget_recovery_codes_if_no_factor(client_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Recovery codes stand in for a factor; with none left (no app, no passkey) they go too."""
    with tenant_transaction(get_db(), client_id) as conn:
        if not repository.has_second_factor(conn, client_id=client_id, user_id=user_id):
            repository.delete_recovery_codes(conn, client_id=client_id, user_id=user_id)


def account_page_facts(client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    with tenant_transaction(get_db(), client_id) as conn:
        on = repository.has_totp(conn, client_id=client_id, user_id=user_id)
        passkeys = repository.list_passkeys(conn, client_id=client_id, user_id=user_id)
        left = repository.unused_recovery_codes(conn, client_id=client_id, user_id=user_id) if on or passkeys else 0
    return {"second_factor_on": on, "recovery_codes_left": left, "passkeys": passkeys}


@blueprint.get("/account/second-factor/required")
def second_factor_required() -> ResponseReturnValue:
    """Where a user is walked when their business requires a second factor they do not have yet."""
    if not email_links.account_state()["second_factor_owed"]:
        return redirect(url_for("accounts.account"), 303)
    return render_template("accounts/second_factor_required.html")


@blueprint.post("/account/members/require-second-factor")
def require_second_factor() -> ResponseReturnValue:
    """An owner's switch for everyone in the business (their own factor first, so they are not locked out)."""
    from intake.accounts.members import require_owner

    require_owner()
    identity = g.identity
    required = request.form.get("required") == "on"
    if required and not enrolled(identity.client_id, identity.user_id):
        flash("Turn on two-step sign-in for your own account first, then require it of everyone.")
        return redirect(url_for("accounts.members"), 303)
    with tenant_transaction(get_db(), identity.client_id) as conn:
        repository.set_require_second_factor(conn, client_id=identity.client_id, required=required)
    logger.info("second factor requirement changed", extra={"client_id": identity.client_id,
                                                            "status": "on" if required else "off"})
    flash("Everyone in the business now needs two-step sign-in." if required
          else "Two-step sign-in is now each person's own choice.")
    return redirect(url_for("accounts.members"), 303)
