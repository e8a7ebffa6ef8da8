"""/v1/sign-in: the password (and the code) checked here, and the session started here.

Two clientless routes finish a sign-in before any session exists; they answer only with a session
secret (or a ticket) for the person whose password or ticket and code were just given. The
password routes of a signed-in user are tenant routes, proved by that user's session like any other.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app

from agent_service.contract import contract
from agent_service.db import get_runtime
from agent_service.second_factor.views import UserNotFound, spend_code
from agent_service.sign_in import repository
from agent_service.sign_in.schemas import (
    ChangeEmailSchema,
    ChangePasswordSchema,
    EmailRequestedSchema,
    MatchesSchema,
    PasswordChangedSchema,
    PasswordSchema,
    SecondFactorSignInSchema,
    SignedInSchema,
    SignInSchema,
)
from shared.db import tenant_transaction
from shared.db.pool import Connection
from shared.passwords import SESSION_SECRET_BYTES, Passwords, hash_recovery_code

logger = logging.getLogger(__name__)
blueprint = Blueprint("sign_in", __name__, url_prefix="/v1/sign-in")
account_blueprint = Blueprint("account_password", __name__,
                              url_prefix="/v1/clients/<uuid:client_id>/users/<uuid:user_id>")

TOKEN_BYTES = SESSION_SECRET_BYTES
# Between the password and the code; a ticket takes this many codes at most, then the password again.
TICKET_TTL = timedelta(minutes=5)
TICKET_ATTEMPTS = 5
# A new address's confirmation link: its lifetime, and how many such emails per user per window.
NEW_EMAIL_LINK_TTL = timedelta(hours=24)
EMAILS_PER_WINDOW = 3
EMAIL_WINDOW = timedelta(minutes=15)
REFUSED: dict[str, Any] = {"outcome": "refused", "client_id": None, "user_id": None, "session": None, "ticket": None}


def passwords() -> Passwords:
    return current_app.extensions["hapex_passwords"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def start_session(conn: Connection, client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> str:
    """A new session of the user; its secret, answered this once (the database keeps its hash).
    The one place a session starts: after a password, a ticket and a code, or a passkey (agent_service/passkeys)."""
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    repository.start_session(conn, client_id=client_id, user_id=user_id, session_hash=hash_secret(secret),
                             idle=timedelta(minutes=data["idle_minutes"]),
                             absolute=timedelta(hours=data["absolute_hours"]), device=data["device"])
    return secret


def count_ticket_attempt(client_id: uuid.UUID, ticket: str) -> uuid.UUID | None:
    """The pending sign-in's user if the ticket is live with attempts left; the attempt is counted in a
    transaction of its own, so that a wrong code (or passkey) still counts."""
    with tenant_transaction(get_runtime().db, client_id) as conn:
        return repository.lock_ticket(conn, client_id=client_id, ticket_hash=hash_secret(ticket),
                                      max_attempts=TICKET_ATTEMPTS)


def ticket_user(conn: Connection, client_id: uuid.UUID, ticket: str) -> uuid.UUID | None:
    """The pending sign-in's user if the ticket is live with attempts left (nothing counted)."""
    return repository.ticket_user(conn, client_id=client_id, ticket_hash=hash_secret(ticket),
                                  max_attempts=TICKET_ATTEMPTS)


def spend_ticket(conn: Connection, client_id: uuid.UUID, ticket: str) -> None:
    """A ticket is good once: spent in the transaction that starts its session."""
    repository.delete_ticket(conn, client_id=client_id, ticket_hash=hash_secret(ticket))


def signed_in(client_id: uuid.UUID, user_id: uuid.UUID, session: str) -> dict[str, Any]:
    logger.info("session started", extra={"client_id": client_id, "user_id": user_id})
    return {**REFUSED, "outcome": "signed_in", "client_id": client_id, "user_id": user_id, "session": session}


def _upgrade(conn: Connection, client_id: uuid.UUID, user_id: uuid.UUID, stored: str, password: str) -> None:
    if passwords().needs_upgrade(stored):
        repository.set_password_hash(conn, client_id=client_id, user_id=user_id,
                                     password_hash=passwords().hash(password), changed=False)


@blueprint.post("")
@contract(SignedInSchema, body=SignInSchema)
def sign_in(data: dict[str, Any]) -> dict[str, Any]:
    """Check the password (an unknown address costs the same check); start a session, or a ticket for the code."""
    rt = get_runtime()
    with rt.db.transaction() as conn:
        found = repository.find_login(conn, email=data["email"])
    stored = found["password_hash"] if found else None
    if not passwords().verify(stored, data["password"]):
        return REFUSED
    assert found is not None and stored is not None
    client_id, user_id = found["client_id"], found["user_id"]
    with tenant_transaction(rt.db, client_id) as conn:
        _upgrade(conn, client_id, user_id, stored, data["password"])
        if repository.has_second_factor(conn, client_id=client_id, user_id=user_id):
            ticket = secrets.token_urlsafe(TOKEN_BYTES)
            repository.insert_ticket(conn, client_id=client_id, user_id=user_id, ticket_hash=hash_secret(ticket),
                                     ttl=TICKET_TTL)
            return {**REFUSED, "outcome": "second_factor", "client_id": client_id, "user_id": user_id,
                    "ticket": ticket}
        session = start_session(conn, client_id, user_id, data)
    return signed_in(client_id, user_id, session)


@blueprint.post("/second-factor")
@contract(SignedInSchema, body=SecondFactorSignInSchema)
def second_factor(data: dict[str, Any]) -> dict[str, Any]:
    """A live ticket and a good code (spent) start the session; the ticket is then used up."""
    rt = get_runtime()
    client_id, ticket, code = data["client_id"], data["ticket"], data["code"].strip()
    user_id = count_ticket_attempt(client_id, ticket)
    if user_id is None:
        return REFUSED
    with tenant_transaction(rt.db, client_id) as conn:
        if code.isdigit() and len(code) == 6:
            try:
                proved = spend_code(conn, rt.vault.keyring, client_id=client_id, user_id=user_id, code=code,
                                    confirm=False)
            except UserNotFound:
                proved = False
        else:
            proved = repository.use_recovery_code(conn, client_id=client_id, user_id=user_id,
                                                  code_hash=hash_recovery_code(code))
        if not proved:
            return REFUSED
        spend_ticket(conn, client_id, ticket)
        session = start_session(conn, client_id, user_id, data)
    return signed_in(client_id, user_id, session)


def _password_matches(conn: Connection, client_id: uuid.UUID, user_id: uuid.UUID, password: str) -> bool:
    stored = repository.password_hash(conn, client_id=client_id, user_id=user_id)
    if stored is None:
        raise UserNotFound()  # a tenant route: the client's session proved it, so this reveals nothing
    return passwords().verify(stored, password)


@account_blueprint.post("/password/check")
@contract(MatchesSchema, body=PasswordSchema, refusals=(UserNotFound,))
def check_password(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Whether this is the user's password (a fresh proof before deleting the business or turning a factor off)."""
    with tenant_transaction(get_runtime().db, client_id) as conn:
        return {"matches": _password_matches(conn, client_id, user_id, data["password"])}


@account_blueprint.put("/password")
@contract(PasswordChangedSchema, body=ChangePasswordSchema, refusals=(UserNotFound,))
def change_password(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """With the current password: the new one is set, every session of the user ends, every reset
    link stops, and this browser gets a new session."""
    with tenant_transaction(get_runtime().db, client_id) as conn:
        if not _password_matches(conn, client_id, user_id, data["current_password"]):
            return {"outcome": "refused", "session": None, "sessions_ended": None}
        repository.set_password_hash(conn, client_id=client_id, user_id=user_id,
                                     password_hash=passwords().hash(data["new_password"]), changed=True)
        ended = repository.end_user_sessions(conn, client_id=client_id, user_id=user_id)
        repository.void_reset_links(conn, client_id=client_id, user_id=user_id)
        session = start_session(conn, client_id, user_id, data)
    logger.info("password changed", extra={"client_id": client_id, "user_id": user_id, "count": ended})
    return {"outcome": "changed", "session": session, "sessions_ended": ended}


@account_blueprint.post("/email")
@contract(EmailRequestedSchema, body=ChangeEmailSchema, refusals=(UserNotFound,))
def request_email_change(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """With the password: a link to confirm the new address is emailed there (nothing changes until it is used)."""
    with tenant_transaction(get_runtime().db, client_id) as conn:
        if not _password_matches(conn, client_id, user_id, data["password"]):
            return {"outcome": "refused"}
        queued = repository.queue_email_to(conn, client_id=client_id, user_id=user_id, kind="verify_new_email",
                                           link_base=data["link_base"], link_ttl=NEW_EMAIL_LINK_TTL,
                                           to_address=data["new_email"], per_window=EMAILS_PER_WINDOW,
                                           window=EMAIL_WINDOW)
    return {"outcome": "sent" if queued else "limited"}
