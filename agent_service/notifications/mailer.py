"""Sending email over SMTP, with the agent's configured settings and TLS unless told otherwise."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from agent_service.notifications.messages import Notice
from shared.config import is_local_host
from shared.secret import Secret

TIMEOUT_SECONDS = 15
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class SMTPSettings:
    """Where notices are sent from: HAPEX_SMTP_* (read by AgentConfig); without a host, notices stay in the app."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    starttls: bool = True

    @property
    def implicit_tls(self) -> bool:
        return self.port == IMPLICIT_TLS_PORT


def build_message(sender: str, recipient: str, notice: Notice) -> EmailMessage:
    """One plain-text message to one recipient, so that no user sees another's address."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = notice.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(notice.body)
    return message


class CleartextRefused(smtplib.SMTPException):
    """Settings without TLS for a host that is not this machine: nothing is sent."""


def send_email(settings: SMTPSettings, recipients: Iterable[str], notice: Notice) -> None:
    """Send the notice to each recipient in one SMTP session; raises smtplib or OS errors."""
    if not settings.starttls and not settings.implicit_tls and not is_local_host(settings.host):
        # AgentConfig refuses such settings at start; this holds for settings built any other way.
        raise CleartextRefused("SMTP without TLS is allowed only to this machine")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.implicit_tls:
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
    with smtp:
        if settings.starttls and not settings.implicit_tls:
            # Raises if the server does not offer STARTTLS: never a silent downgrade.
            smtp.starttls(context=context)
        if settings.username and settings.password is not None:
            smtp.login(settings.username, settings.password.reveal())
        for recipient in recipients:
            smtp.send_message(build_message(settings.sender, recipient, notice))
