"""Team members: the owners of a business invite people by email; each has a user of their own.

Owners manage members and may delete the business; members work with automations, connections
and runs. An invited person is a user with a password no one knows (a hash of random bytes)
until they follow the invitation's single-use link and choose one. Removing a member deletes
their user, which ends their sessions at once. An owner never acts on their own user here, so a
business always keeps the owner who is acting.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from intake.accounts import email_links, repository, sessions
from intake.accounts.forms import InviteForm, MemberRoleForm
from intake.accounts.views import TOO_MANY_ATTEMPTS, blueprint, throttle
from intake.db import get_db
from shared.db import AlreadyExists, tenant_transaction

logger = logging.getLogger(__name__)

INVITED = ("We sent an invitation to {email}. It works once, within 7 days; the person chooses their own "
           "password.")


def current_role() -> str:
    identity = g.identity
    with tenant_transaction(get_db(), identity.client_id) as conn:
        account = repository.get_account(conn, client_id=identity.client_id, user_id=identity.user_id)
    if account is None:
        abort(404)
    return str(account["role"])


def require_owner() -> None:
    """Owners only: members get 403 (not 404: they may know the page exists, they may not use it)."""
    if current_role() != "owner":
        abort(403)


def _page(*, form: InviteForm | None = None, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    identity = g.identity
    with tenant_transaction(get_db(), identity.client_id) as conn:
        members = repository.list_members(conn, client_id=identity.client_id)
        account = repository.get_account(conn, client_id=identity.client_id, user_id=identity.user_id)
    me: dict[str, Any] = next(m for m in members if m["user_id"] == identity.user_id)
    return render_template("accounts/members.html", members=members, me=me, is_owner=me["role"] == "owner",
                           form=form or InviteForm(formdata=None), role_form=MemberRoleForm(formdata=None),
                           error=error,
                           require_second_factor=bool(account and account["require_second_factor"])), status


@blueprint.get("/account/members")
def members() -> ResponseReturnValue:
    return _page()


@blueprint.post("/account/members/invite")
def invite() -> ResponseReturnValue:
    require_owner()
    identity = g.identity
    form = InviteForm()
    if not form.validate():
        return _page(form=form, status=400)
    buckets = throttle().buckets(email=str(identity.user_id), address=request.remote_addr, purpose="invite")
    if not throttle().begin_attempt(buckets):
        return _page(form=form, error=TOO_MANY_ATTEMPTS, status=429)
    try:
        with tenant_transaction(get_db(), identity.client_id) as conn:
            # Through the owner's live session, with no password anyone knows (signing in as them costs
            # as much as anyone's and succeeds for no one) until they choose one with the invitation's link.
            user_id = repository.invite_member(conn, session_secret=sessions.current_secret(identity.client_id),
                                               email=form.email.data, role=form.role.data)
    except AlreadyExists:
        # Answered as any invitation, so inviting does not tell who has an account; the address is told.
        with get_db().transaction() as conn:
            existing = repository.find_account(conn, email=form.email.data)
        if existing is not None and existing["client_id"] != identity.client_id:
            email_links.queue_email(get_db(), client_id=existing["client_id"], user_id=existing["user_id"],
                                    kind="invitation_taken")
    else:
        if user_id is None:
            abort(403)
        email_links.queue_email(get_db(), client_id=identity.client_id, user_id=user_id, kind="invitation")
        logger.info("member invited", extra={"client_id": identity.client_id, "user_id": user_id})
    flash(INVITED.format(email=form.email.data))
    return redirect(url_for("accounts.members"), 303)


@blueprint.post("/account/members/<uuid:user_id>/remove")
def remove_member(user_id: uuid.UUID) -> ResponseReturnValue:
    """The user goes, and with them every session they had: their cookie opens nothing from now on."""
    require_owner()
    identity = g.identity
    if user_id == identity.user_id:
        abort(400)
    with tenant_transaction(get_db(), identity.client_id) as conn:
        removed = repository.delete_member(conn, client_id=identity.client_id, user_id=user_id,
                                           acting_user_id=identity.user_id)
    if not removed:
        abort(404)
    logger.info("member removed", extra={"client_id": identity.client_id, "user_id": user_id})
    flash("The member was removed, and every session they had was ended.")
    return redirect(url_for("accounts.members"), 303)


@blueprint.post("/account/members/<uuid:user_id>/role")
def set_role(user_id: uuid.UUID) -> ResponseReturnValue:
    require_owner()
    identity = g.identity
    form = MemberRoleForm()
    if not form.validate() or user_id == identity.user_id:
        abort(400)
    with tenant_transaction(get_db(), identity.client_id) as conn:
        changed = repository.set_member_role(conn, client_id=identity.client_id, user_id=user_id,
                                             acting_user_id=identity.user_id, role=form.role.data)
    if not changed:
        abort(404)
    logger.info("member role changed", extra={"client_id": identity.client_id, "user_id": user_id})
    flash("The role was changed.")
    return redirect(url_for("accounts.members"), 303)
