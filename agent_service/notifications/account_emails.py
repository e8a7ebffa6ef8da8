"""Account emails (address verification, password reset, account notices): sent by a worker.

The intake writes a row saying which user and which kind; a trigger wakes a worker at once and
a sweep retries what failed. A link's token is drawn here, at send time, and only its SHA-256 is
written back, in the same transaction as the "sent" status: the token lives in the email alone.
The row stays locked while the email is sent, so two workers never send one twice. Nothing about
the recipient, the token or the text is logged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from agent_service.notifications.mailer import SMTPSettings, send_email
from agent_service.notifications.messages import Notice, compose_account_email
from shared.db import Database, QuerySet, execute, fetch_all, fetch_one, fetch_optional, tenant_transaction
from shared.email_links import LINK_PATH

logger = logging.getLogger(__name__)
QUERIES = QuerySet(Path(__file__).with_name("account_emails.sql"))
MAX_ATTEMPTS = 5
TOKEN_BYTES = 32

Sender = Callable[[SMTPSettings, Iterable[str], Notice], None]


def hash_link_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def deliver_account_emails(db: Database, settings: SMTPSettings | None, *, limit: int = 100,
                           sender: Sender = send_email, link_origin: str | None = None) -> dict[str, int]:
    """Send every pending account email; how many ended in each state."""
    with db.transaction() as conn:
        pending = fetch_all(conn, QUERIES["pending_account_emails"], limit=limit)
    outcomes: Counter[str] = Counter()
    for row in pending:
        outcomes[deliver_account_email(db, settings, client_id=row["client_id"], email_id=row["email_id"],
                                       sender=sender, link_origin=link_origin)] += 1
    return dict(outcomes)


def deliver_account_email(db: Database, settings: SMTPSettings | None, *, client_id: uuid.UUID,
                          email_id: uuid.UUID, sender: Sender = send_email, link_origin: str | None = None) -> str:
    """Send one account email if it is still pending; its status afterwards ('busy' if locked).

    With link_origin (the agent's INTAKE_PUBLIC_URL) a link always points there: the row's link_base,
    which the intake wrote, only says that a link is wanted, so a compromised intake cannot have the
    token sent to a host of its choosing."""
    log = {"client_id": client_id, "email_id": email_id}
    with tenant_transaction(db, client_id) as conn:
        email = fetch_optional(conn, QUERIES["lock_pending_account_email"], email_id=email_id)
        if email is None:
            return "busy"
        status, attempted, token_hash = "no_smtp", 0, None
        recipient = email["to_address"] or fetch_one(conn, QUERIES["recipient"], client_id=client_id,
                                                     user_id=email["user_id"])["email"]
        if settings is not None and recipient:
            link = None
            if email["link_base"]:
                token = secrets.token_urlsafe(TOKEN_BYTES)
                token_hash = hash_link_token(token)
                base = link_origin.rstrip("/") + LINK_PATH if link_origin else email["link_base"]
                link = base + token
            message = compose_account_email(email["kind"], link=link, link_ttl=email["link_ttl"])
            attempted = 1
            try:
                sender(settings, [recipient], message)
                status = "sent"
            except (smtplib.SMTPException, OSError) as failure:
                token_hash = None
                status = "failed" if email["attempts"] + 1 >= MAX_ATTEMPTS else "pending"
                logger.warning("account email not sent", extra={**log, "status": status,
                                                                "error_class": type(failure).__name__})
        execute(conn, QUERIES["finish_account_email"], email_id=email_id, status=status, attempted=attempted,
                token_hash=token_hash)
    if status == "sent":
        logger.info("account email sent", extra={**log, "status": email["kind"]})
    return status
