"""The local stack's mail catcher: `make run` points the agent's SMTP settings at it, and each
message lands whole in .data/mail/ for the developer to read; nothing of Hapex's reaches it."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage

from agent_service.config import smtp_settings
from hapex.localstack import mail_catcher
from hapex.localstack.stack import LocalDatabase, environment_for, local_environment
from hapex.settings import LauncherSettings
from shared.config import Environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_stack_sends_mail_to_its_catcher_unless_the_developer_set_smtp(tmp_path):
    database = LocalDatabase("postgresql://owner@localhost/hapex", None)
    env = local_environment(database, LauncherSettings.from_env({"HAPEX_DATA_DIR": str(tmp_path)}))
    assert env["HAPEX_LOCAL_MAIL_DIR"] == str(tmp_path / "mail")
    settings = smtp_settings(Environment(env, declared=("HAPEX_SMTP_HOST", "HAPEX_SMTP_PORT", "HAPEX_SMTP_FROM",
                                                        "HAPEX_SMTP_USERNAME", "HAPEX_SMTP_PASSWORD",
                                                        "HAPEX_SMTP_STARTTLS")))
    assert settings is not None and (settings.host, settings.port) == ("127.0.0.1", mail_catcher.DEFAULT_PORT)
    own = local_environment(database, LauncherSettings.from_env(
        {"HAPEX_DATA_DIR": str(tmp_path), "HAPEX_SMTP_HOST": "smtp.example.com"}))
    assert own["HAPEX_SMTP_HOST"] == "smtp.example.com" and "HAPEX_LOCAL_MAIL_DIR" not in own
    catcher = environment_for("mail", env)
    assert not any(k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_", "DATABASE")) for k in catcher)


def test_the_catcher_keeps_each_message_as_a_private_file(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen([sys.executable, "-m", "hapex.localstack.mail_catcher", "--dir", str(folder),
                                "--port", str(port)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert b"caught in" in process.stdout.readline()
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@localhost", "b@example.com", "Hello"
        message.set_content("A link: https://localhost:8443/email-link/x\n")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
        deadline = time.monotonic() + 10
        while not mail_catcher.messages(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        [path] = mail_catcher.messages(folder)
        assert b"Subject: Hello" in path.read_bytes() and b"/email-link/x" in path.read_bytes()
        assert path.stat().st_mode & 0o077 == 0
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
