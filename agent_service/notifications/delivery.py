"""Emailing pending notices: each once, by one worker, to the users of its client.

The notice row stays locked (SKIP LOCKED for other workers) while its email is sent, so
two workers never send the same notice; the SMTP timeout bounds how long that is. A send
that fails is retried on the next pass, up to MAX_ATTEMPTS times. Without SMTP settings a
notice is kept in the app only. Nothing about a recipient is logged.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from agent_service.notifications import repository
from agent_service.notifications.mailer import SMTPSettings, send_email
from agent_service.notifications.messages import Notice, compose
from shared.db import Database, tenant_transaction
from shared.db.pool import Connection

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5

Sender = Callable[[SMTPSettings, Iterable[str], Notice], None]


def deliver_notifications(db: Database, settings: SMTPSettings | None, *, limit: int = 100,
                          sender: Sender = send_email) -> dict[str, int]:
    """Email every pending notice (or keep it in the app only); how many ended in each state."""
    with db.transaction() as conn:
        pending = repository.pending_notifications(conn, limit=limit)
    outcomes: Counter[str] = Counter()
    for row in pending:
        outcomes[deliver_notification(db, settings, client_id=row["client_id"],
                                      notification_id=row["notification_id"], sender=sender)] += 1
    return dict(outcomes)


def deliver_notification(db: Database, settings: SMTPSettings | None, *, client_id: uuid.UUID,
                         notification_id: uuid.UUID, sender: Sender = send_email) -> str:
    """Send one notice if it is still pending; its email status afterwards ('busy' if locked)."""
    log = {"client_id": client_id, "notification_id": notification_id}
    with tenant_transaction(db, client_id) as conn:
        notice = repository.lock_pending_notification(conn, notification_id=notification_id)
        if notice is None:
            return "busy"
        status, attempted = _send(conn, settings, client_id, notice, sender, log)
        repository.finish_notification(conn, notification_id=notification_id, email_status=status,
                                       attempted=attempted)
    return status


def _send(conn: Connection, settings: SMTPSettings | None, client_id: uuid.UUID, notice: dict[str, Any],
          sender: Sender, log: dict[str, Any]) -> tuple[str, int]:
    """The notice's email status after trying to send it, and whether a send was attempted."""
    if settings is None:
        return "in_app_only", 0
    recipients = repository.notice_recipients(conn, client_id=client_id)
    if not recipients:
        return "no_recipient", 0
    message = compose(notice["kind"], provider=notice["provider"], budget_percent=notice["budget_percent"])
    try:
        sender(settings, recipients, message)
    except (smtplib.SMTPException, OSError) as failure:
        attempts = notice["email_attempts"] + 1
        status = "failed" if attempts >= MAX_ATTEMPTS else "pending"
        logger.warning("notice email not sent", extra={**log, "attempt": attempts, "status": status,
                                                       "error_class": type(failure).__name__})
        return status, 1
    logger.info("notice emailed", extra={**log, "status": notice["kind"], "count": len(recipients)})
    return "sent", 1
