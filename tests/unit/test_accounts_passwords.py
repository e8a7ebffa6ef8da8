"""Password hashing settings: the cheap profile the tests use is refused outside test mode."""

from __future__ import annotations

import pytest

from hapex.localstack.local_secrets import new_token
from intake.config import IntakeConfig
from shared.config import ConfigError


def test_the_cheap_test_profile_is_refused_outside_test_mode():
    environ = {
        "INTAKE_DATABASE_URL": "postgresql://localhost/hapex",
        "INTAKE_SESSION_SECRET": new_token(),
        "AGENT_SERVICE_TOKEN": new_token(),
        "AGENT_SERVICE_URL": "https://agent.example",
        "INTAKE_PASSWORD_HASH_PROFILE": "test",
    }
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(environ)
    assert raised.value.variable == "INTAKE_PASSWORD_HASH_PROFILE"
    assert IntakeConfig.from_env(environ | {"HAPEX_TEST_MODE": "1"}).password_hash_profile == "test"
    del environ["INTAKE_PASSWORD_HASH_PROFILE"]
    assert IntakeConfig.from_env(environ).password_hash_profile == "owasp"
