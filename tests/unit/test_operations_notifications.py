"""SMTP settings for notices: a setting that cannot work names its variable, never the password."""

from __future__ import annotations

import pytest

from agent_service.config import smtp_settings
from shared.config import ConfigError, Environment

SMTP = {"HAPEX_SMTP_HOST": "smtp.example.com", "HAPEX_SMTP_FROM": "Hapex <notices@example.com>"}


@pytest.mark.parametrize(("changes", "variable"), [
    ({"HAPEX_SMTP_FROM": ""}, "HAPEX_SMTP_FROM"),
    ({"HAPEX_SMTP_FROM": "not an address"}, "HAPEX_SMTP_FROM"),
    ({"HAPEX_SMTP_PORT": "smtp"}, "HAPEX_SMTP_PORT"),
    ({"HAPEX_SMTP_HOST": "smtp.example.com:587"}, "HAPEX_SMTP_HOST"),
    ({"HAPEX_SMTP_USERNAME": "hapex"}, "HAPEX_SMTP_PASSWORD"),
    ({"HAPEX_SMTP_USERNAME": "hapex", "HAPEX_SMTP_PASSWORD": "pw-canary-123", "HAPEX_SMTP_STARTTLS": "false"},
     "HAPEX_SMTP_STARTTLS"),
])
def test_smtp_settings_that_do_not_work_name_the_variable_and_never_the_password(changes, variable):
    with pytest.raises(ConfigError) as raised:
        smtp_settings(Environment({**SMTP, **changes}))
    assert raised.value.variable == variable
    assert "pw-canary-123" not in str(raised.value)


def test_smtp_settings_keep_the_password_out_of_their_repr():
    env = Environment({**SMTP, "HAPEX_SMTP_USERNAME": "hapex", "HAPEX_SMTP_PASSWORD": "pw-canary-123"})
    settings = smtp_settings(env)
    assert settings is not None and settings.port == 587 and settings.starttls
    assert "pw-canary-123" not in repr(settings)
