"""Start-up configuration: a missing or malformed value names the variable, never its value."""

from __future__ import annotations

import dataclasses

import pytest

from agent_service.config import AgentConfig
from hapex.localstack.local_secrets import new_encryption_key, new_token
from intake.config import IntakeConfig
from shared.config import ConfigError

DSN = "postgresql://hapex_agent@localhost/hapex"


def agent_env(**overrides: str | None) -> dict[str, str]:
    env = {
        "AGENT_DATABASE_URL": DSN,
        "AGENT_SERVICE_TOKEN": new_token(),
        "AGENT_ADMIN_TOKEN": new_token(),
        "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(),
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
    return env


def intake_env(tmp_path, **overrides: str | None) -> dict[str, str]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "INTAKE_DATABASE_URL": DSN,
        "INTAKE_SESSION_SECRET": new_token(),
        "AGENT_SERVICE_TOKEN": new_token(),
        "AGENT_SERVICE_URL": "https://agent.internal:8444",
        "AGENT_SERVICE_CA": str(ca),
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
    return env


def test_a_complete_agent_environment_loads():
    config = AgentConfig.from_env(agent_env())
    assert config.service_token.reveal()


@pytest.mark.parametrize(
    "variable",
    ["AGENT_DATABASE_URL", "AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY"],
)
def test_the_agent_refuses_to_start_without_each_required_variable(variable):
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(**{variable: None}))
    assert raised.value.variable == variable
    assert "must be set" in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CREDENTIAL_ENCRYPTION_KEY", "c2hvcnQ=", "32 bytes"),
        ("CREDENTIAL_ENCRYPTION_KEY", "!!!!not-base64!!!!", "base64"),
        ("CREDENTIAL_ENCRYPTION_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "one byte"),
        ("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", "c2hvcnQ=", "32 bytes"),
        ("AGENT_SERVICE_TOKEN", "too-short", "at least"),
        ("AGENT_ADMIN_TOKEN", "a" * 64, "random"),
        ("AGENT_DATABASE_URL", "mysql://nope", "postgresql"),
        ("AGENT_DB_POOL_MAX", "lots", "integer"),
    ],
)
def test_a_malformed_agent_value_is_named_but_never_printed(variable, value, problem):
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(**{variable: value}))
    assert raised.value.variable == variable
    assert problem in str(raised.value)
    assert value not in str(raised.value)


def test_the_admin_token_must_differ_from_the_service_token():
    token = new_token()
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(AGENT_SERVICE_TOKEN=token, AGENT_ADMIN_TOKEN=token))
    assert raised.value.variable == "AGENT_ADMIN_TOKEN"
    with pytest.raises(ConfigError):
        AgentConfig.from_env(agent_env(AGENT_SERVICE_TOKEN_PREVIOUS=token, AGENT_ADMIN_TOKEN=token))


def test_config_reprs_never_show_a_secret():
    env = agent_env()
    text = repr(AgentConfig.from_env(env)) + str(AgentConfig.from_env(env))
    for name in ("AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY"):
        assert env[name] not in text
    assert DSN not in text


def test_the_intake_configuration_has_no_field_for_the_encryption_key(tmp_path):
    names = {f.name for f in dataclasses.fields(IntakeConfig)}
    assert not any("encryption" in n or "credential" in n for n in names)
    env = intake_env(tmp_path, CREDENTIAL_ENCRYPTION_KEY=new_encryption_key())
    config = IntakeConfig.from_env(env)
    assert env["CREDENTIAL_ENCRYPTION_KEY"] not in repr(config)


@pytest.mark.parametrize(
    "url", ["http://agent.internal:8444", "ftp://agent", "agent.internal:8444", "https://"]
)
def test_the_intake_refuses_an_agent_url_that_is_not_https(tmp_path, url):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, AGENT_SERVICE_URL=url))
    assert raised.value.variable == "AGENT_SERVICE_URL"


@pytest.mark.parametrize(
    "variable", ["INTAKE_DATABASE_URL", "INTAKE_SESSION_SECRET", "AGENT_SERVICE_TOKEN", "AGENT_SERVICE_URL"]
)
def test_the_intake_refuses_to_start_without_each_required_variable(tmp_path, variable):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, **{variable: None}))
    assert raised.value.variable == variable


def test_the_intake_refuses_a_ca_file_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, AGENT_SERVICE_CA=str(tmp_path / "missing.pem")))
    assert raised.value.variable == "AGENT_SERVICE_CA"
