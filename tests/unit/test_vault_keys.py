"""A bad CREDENTIAL_ENCRYPTION_KEY stops the agent naming the variable, never the value."""

from __future__ import annotations

import base64
import os

import pytest

from agent_service.config import AgentConfig
from agent_service.vault.keyring import Keyring
from agent_service.vault.keys import key_id, parse_key, parse_key_list
from hapex import cli
from shared.config import ConfigError

GOOD = base64.b64encode(os.urandom(32)).decode()
OTHER = base64.b64encode(os.urandom(32)).decode()

BAD_KEYS = {
    "too short": base64.b64encode(b"s3cr3t-but-only-24-bytes").decode(),
    "too long": base64.b64encode(os.urandom(48)).decode(),
    "not base64": "this is not base64 at all!!! ~~~ 0123456789",
    "hex instead of base64": os.urandom(32).hex(),
    "one byte repeated": base64.b64encode(b"\x41" * 32).decode(),
    "all zero": base64.b64encode(b"\x00" * 32).decode(),
}


def _agent_env(**overrides: str) -> dict[str, str]:
    env = {
        "AGENT_DATABASE_URL": "postgresql://hapex_agent@localhost/hapex",
        "AGENT_SERVICE_TOKEN": "service-token-" + "a1b2c3d4e5f6g7h8i9j0" * 2,
        "AGENT_ADMIN_TOKEN": "admin-token-" + "z9y8x7w6v5u4t3s2r1q0" * 2,
        "CREDENTIAL_ENCRYPTION_KEY": GOOD,
    }
    env.update(overrides)
    return env


@pytest.mark.parametrize("problem", sorted(BAD_KEYS))
def test_a_malformed_primary_key_is_refused_naming_the_variable_not_the_value(problem):
    value = BAD_KEYS[problem]
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(_agent_env(CREDENTIAL_ENCRYPTION_KEY=value))
    assert raised.value.variable == "CREDENTIAL_ENCRYPTION_KEY"
    message = str(raised.value)
    assert message.startswith("CREDENTIAL_ENCRYPTION_KEY ")
    assert value not in message and value[:12] not in message


@pytest.mark.parametrize("problem", sorted(BAD_KEYS))
def test_a_malformed_retired_key_is_refused_naming_its_variable(problem):
    value = BAD_KEYS[problem]
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(_agent_env(CREDENTIAL_ENCRYPTION_KEYS_RETIRED=f"{OTHER},{value}"))
    assert raised.value.variable == "CREDENTIAL_ENCRYPTION_KEYS_RETIRED"
    assert value not in str(raised.value) and OTHER not in str(raised.value)


def test_a_missing_primary_key_is_refused():
    env = _agent_env()
    del env["CREDENTIAL_ENCRYPTION_KEY"]
    with pytest.raises(ConfigError, match="CREDENTIAL_ENCRYPTION_KEY must be set"):
        AgentConfig.from_env(env)


def test_the_keyring_of_a_config_holds_the_primary_and_the_retired_keys():
    config = AgentConfig.from_env(_agent_env(CREDENTIAL_ENCRYPTION_KEYS_RETIRED=f" {OTHER} ,"))
    keyring = Keyring.from_config(config)
    assert keyring.primary_key_id == key_id(base64.b64decode(GOOD))
    assert keyring.retired_key_ids == (key_id(base64.b64decode(OTHER)),)
    assert GOOD not in repr(config) and OTHER not in repr(config)


def test_url_safe_base64_is_accepted_and_trailing_garbage_is_not():
    raw = os.urandom(32)
    assert parse_key("V", base64.urlsafe_b64encode(raw).decode()) == raw
    with pytest.raises(ConfigError):
        parse_key("V", base64.b64encode(raw).decode() + "AAAA")
    assert parse_key_list("V", "") == [] and parse_key_list("V", None) == []


@pytest.mark.parametrize("service", ["agent", "worker"])
def test_hapex_serve_exits_non_zero_naming_the_variable_not_the_key(service, monkeypatch, capsys):
    bad = BAD_KEYS["too short"]
    for name, value in _agent_env(CREDENTIAL_ENCRYPTION_KEY=bad).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", raising=False)
    assert cli.main(["serve", service]) == 2
    err = capsys.readouterr().err
    assert "CREDENTIAL_ENCRYPTION_KEY must decode to 32 bytes" in err
    assert bad not in err
