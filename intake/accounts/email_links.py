"""Account emails and the single-use links in them.

The intake only asks for an email (a row: user, kind, the page its link opens): an agent worker
draws the link's token when it sends the email and stores only its SHA-256, so the token lives in
the email alone (agent_service/notifications/account_emails.py). A link is bound to its user and
its kind, works once, expires (VERIFY_TTL, RESET_TTL) and stops working when the password changes
or the address is confirmed. Its path is masked in the access log (LINK_PREFIX).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request

from intake.accounts import repository
from shared.db import tenant_transaction
from shared.db.pool import Database
from shared.email_links import LINK_PATH

LINK_PREFIX = LINK_PATH
VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(minutes=30)
# At most this many emails of one kind to one user in a window, whatever is asked.
PER_WINDOW = 3
WINDOW = timedelta(minutes=15)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

INVITATION_TTL = timedelta(days=7)
LINK_KINDS = {"verify_email": VERIFY_TTL, "reset_password": RESET_TTL, "invitation": INVITATION_TTL,
              "verify_new_email": VERIFY_TTL}


@dataclass(frozen=True)
class AccountLink:
    """Whose link this is and what it is for; `live` when unused and unexpired."""

    client_id: uuid.UUID
    email_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    live: bool


def queue_email(db: Database, *, client_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> bool:
    """Ask for an account email to the user's own address; False when they had enough of this kind lately.
    (A message to another address, a new one to confirm, is the agent's to ask, after the password.)"""
    ttl = LINK_KINDS.get(kind)
    link_base = link_origin() + LINK_PREFIX if ttl is not None else None
    with tenant_transaction(db, client_id) as conn:
        email_id = repository.queue_account_email(
            conn, client_id=client_id, user_id=user_id, kind=kind, link_base=link_base, link_ttl=ttl,
            per_window=PER_WINDOW, window=WINDOW,
        )
    return email_id is not None


def link_origin() -> str:
    """INTAKE_PUBLIC_URL when set: never the request's Host header, which whoever asks for a reset
    link chooses (a link poisoned with another host would hand them the victim's token)."""
    public_url: str | None = current_app.config["HAPEX"].public_url
    return public_url.rstrip("/") if public_url else request.url_root.rstrip("/")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def find_link(db: Database, token: str) -> AccountLink | None:
    """The link this token opens, or None for a token that was never sent (or is malformed)."""
    if not _TOKEN_SHAPE.match(token):
        return None
    with db.transaction() as conn:
        row = repository.find_account_link(conn, token_hash=hash_token(token))
    return AccountLink(**row) if row is not None else None


UNVERIFIED_REFUSAL = (
    "Confirm your email address first: follow the link in the email we sent you (or send it again from "
    "the notice above). Until then Hapex does not connect services or turn on automations for the account."
)


def account_state() -> dict[str, bool]:
    """The signed-in user's confirmed address and owed second factor, read once per request."""
    identity = g.get("identity")
    if identity is None:
        return {"verified": True, "second_factor_owed": False}
    if "account_state" not in g:
        with tenant_transaction(current_app.extensions["hapex_db"], identity.client_id) as conn:
            row = repository.account_state(conn, client_id=identity.client_id, user_id=identity.user_id)
        g.account_state = {"verified": bool(row and row["verified"]),
                           "second_factor_owed": bool(row and row["second_factor_owed"])}
    return g.account_state  # type: ignore[no-any-return]  # Flask's g holds Any


def email_unverified() -> bool:
    """Whether the signed-in user has yet to confirm their address."""
    return not account_state()["verified"]
