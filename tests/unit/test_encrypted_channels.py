"""Every channel encrypted: a database on another host only over verified TLS, SMTP in clear only to this
machine, provider endpoints only over https. Each refusal names the variable and never its value."""

from __future__ import annotations

import pytest

from agent_service.config import AgentConfig, CredentialKeysConfig, ReportsConfig, smtp_settings
from agent_service.notifications.mailer import CleartextRefused, SMTPSettings, send_email
from agent_service.notifications.messages import Notice
from hapex.settings import LauncherSettings
from intake.config import IntakeConfig
from shared.catalog import ENDPOINT_FIELDS, PROVIDERS
from shared.config import ConfigError, Environment, endpoint_variable
from tests.unit.test_config import agent_env, intake_env

PASSWORD = "pw-canary-0123456789"
REMOTE = [
    f"postgresql://hapex_agent:{PASSWORD}@db.example.com:5432/hapex",
    f"postgresql://hapex_agent:{PASSWORD}@db.example.com/hapex?sslmode=require",
    f"postgresql://hapex_agent:{PASSWORD}@db.example.com/hapex?sslmode=verify-ca",
    f"postgresql://hapex_agent:{PASSWORD}@localhost,db.example.com/hapex?sslmode=prefer",
    f"host=10.0.0.5 user=hapex_agent password={PASSWORD} dbname=hapex",
    f"hostaddr=10.0.0.5 user=hapex_agent password={PASSWORD} dbname=hapex sslmode=disable",
]
ACCEPTED = [
    f"postgresql://hapex_agent:{PASSWORD}@db.example.com:5432/hapex?sslmode=verify-full&sslrootcert=/ca.pem",
    f"host=postgres user=hapex_agent password={PASSWORD} dbname=hapex sslmode=verify-full",
    "postgresql://hapex_agent@localhost/hapex",
    "postgresql://hapex_agent@127.0.0.1:5432/hapex",
    "postgresql://hapex_agent@[::1]:5432/hapex",
    "host=/run/postgresql user=hapex_agent dbname=hapex",
    "postgresql:///hapex?host=/tmp/pg&user=hapex_agent",
    "dbname=hapex user=hapex_agent",
]


def configs_reading(variable: str, value: str, tmp_path):
    """Each configuration that reads the variable, built with the value."""
    if variable == "INTAKE_DATABASE_URL":
        return [lambda: IntakeConfig.from_env(intake_env(tmp_path, INTAKE_DATABASE_URL=value))]
    if variable == "DATABASE_URL":
        return [lambda: LauncherSettings.from_env({"DATABASE_URL": value})]
    env = agent_env(AGENT_DATABASE_URL=value)
    return [lambda: AgentConfig.from_env(env), lambda: CredentialKeysConfig.from_env(env),
            lambda: ReportsConfig.from_env({"AGENT_DATABASE_URL": value})]


@pytest.mark.parametrize("variable", ["INTAKE_DATABASE_URL", "AGENT_DATABASE_URL", "DATABASE_URL"])
@pytest.mark.parametrize("dsn", REMOTE)
def test_a_database_on_another_host_without_verify_full_is_refused_at_start(variable, dsn, tmp_path):
    for build in configs_reading(variable, dsn, tmp_path):
        with pytest.raises(ConfigError) as raised:
            build()
        assert raised.value.variable == variable
        assert "sslmode=verify-full" in str(raised.value)
        assert PASSWORD not in str(raised.value) and "example.com" not in str(raised.value)


@pytest.mark.parametrize("variable", ["INTAKE_DATABASE_URL", "AGENT_DATABASE_URL", "DATABASE_URL"])
@pytest.mark.parametrize("dsn", ACCEPTED)
def test_a_local_database_or_one_over_verified_tls_is_accepted(variable, dsn, tmp_path):
    for build in configs_reading(variable, dsn, tmp_path):
        build()


SMTP = {"HAPEX_SMTP_HOST": "smtp.example.com", "HAPEX_SMTP_FROM": "Hapex <notices@example.com>"}


def test_smtp_without_tls_to_another_host_is_refused_at_start():
    with pytest.raises(ConfigError) as raised:
        smtp_settings(Environment({**SMTP, "HAPEX_SMTP_STARTTLS": "false"}))
    assert raised.value.variable == "HAPEX_SMTP_STARTTLS"
    assert "smtp.example.com" not in str(raised.value)


@pytest.mark.parametrize(("host", "port", "starttls"), [
    ("localhost", "25", "false"), ("127.0.0.1", "1025", "false"), ("smtp.example.com", "465", "false"),
    ("smtp.example.com", "587", "true"),
])
def test_smtp_with_tls_or_to_this_machine_is_accepted(host, port, starttls):
    settings = smtp_settings(Environment({**SMTP, "HAPEX_SMTP_HOST": host, "HAPEX_SMTP_PORT": port,
                                          "HAPEX_SMTP_STARTTLS": starttls}))
    assert settings is not None and settings.host == host


def test_the_mailer_sends_nothing_in_clear_to_another_host_however_its_settings_were_made(monkeypatch):
    import smtplib

    opened = []
    monkeypatch.setattr(smtplib, "SMTP", lambda *args, **kwargs: opened.append(args))
    settings = SMTPSettings(host="smtp.example.com", port=25, sender="notices@example.com", starttls=False)
    with pytest.raises(CleartextRefused):
        send_email(settings, ["owner@example.com"], Notice(subject="s", body="b"))
    assert opened == []


@pytest.mark.parametrize("endpoint", ENDPOINT_FIELDS)
@pytest.mark.parametrize("url", ["http://sandbox.example.com/x", "ftp://sandbox.example.com/x", "sandbox.example.com",
                                 "https:///no-host"])
def test_a_provider_endpoint_override_must_be_https(endpoint, url, tmp_path):
    for provider in PROVIDERS.values():
        variable = endpoint_variable(provider, endpoint)
        for build in (lambda: AgentConfig.from_env(agent_env(**{variable: url})),
                      lambda: IntakeConfig.from_env(intake_env(tmp_path, **{variable: url}))):
            with pytest.raises(ConfigError) as raised:
                build()
            assert raised.value.variable == variable
            assert "https://" in str(raised.value) and url not in str(raised.value)
