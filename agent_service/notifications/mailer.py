"""Sending email over SMTP, with settings from the environment and TLS unless told otherwise."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from agent_service.notifications.messages import Notice
from shared.config import ConfigError, Environment
from shared.secret import Secret

TIMEOUT_SECONDS = 15
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class SMTPSettings:
    """Where notices are sent from: HAPEX_SMTP_*; without HAPEX_SMTP_HOST, notices stay in the app."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    starttls: bool = True

    @property
    def implicit_tls(self) -> bool:
        return self.port == IMPLICIT_TLS_PORT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SMTPSettings | None:
        """None when no SMTP host is set; ConfigError naming the variable when one is malformed."""
        env = Environment(environ)
        host = env.get("HAPEX_SMTP_HOST")
        if host is None:
            return None
        if any(c in host for c in "/@: \r\n"):
            raise ConfigError("HAPEX_SMTP_HOST", "must be a host name (the port goes in HAPEX_SMTP_PORT)")
        port = env.integer("HAPEX_SMTP_PORT", 587, minimum=1, maximum=65535)
        sender = env.require("HAPEX_SMTP_FROM")
        address = parseaddr(sender)[1]
        if "\r" in sender or "\n" in sender or "@" not in address or address.startswith("@"):
            raise ConfigError("HAPEX_SMTP_FROM", "must be an email address, optionally with a name")
        username = env.get("HAPEX_SMTP_USERNAME")
        password = env.get("HAPEX_SMTP_PASSWORD")
        if username and not password:
            raise ConfigError("HAPEX_SMTP_PASSWORD", "must be set when HAPEX_SMTP_USERNAME is")
        starttls = env.boolean("HAPEX_SMTP_STARTTLS", True)
        if username and not starttls and port != IMPLICIT_TLS_PORT:
            raise ConfigError("HAPEX_SMTP_STARTTLS", "must be true when HAPEX_SMTP_USERNAME is set, "
                                                     "or the password would cross the network in clear")
        return cls(host=host, port=port, sender=sender, username=username,
                   password=Secret(password) if password else None, starttls=starttls)


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


def send_email(settings: SMTPSettings, recipients: Iterable[str], notice: Notice) -> None:
    """Send the notice to each recipient in one SMTP session; raises smtplib or OS errors."""
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
