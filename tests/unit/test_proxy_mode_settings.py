"""TLS terminated by the platform's balancer only when said explicitly, and never half-said.

`hapex serve` exits 2 naming the variable when TLS_TERMINATION=proxy meets a setting that contradicts
it; without TLS_TERMINATION the service serves TLS itself, whatever TRUSTED_PROXY_COUNT says.
(tests/e2e/test_behind_balancer.py runs proxy mode under gunicorn.)
"""

from __future__ import annotations

import os

import pytest

from hapex.cli import main
from hapex.settings import LauncherSettings, private_bind
from shared.config import ConfigError

TOKEN = "x7Kq2mZp9Lr4Vt8Nw1Bc6Yd3Hf5Jg0Sa"
INTAKE = {
    "INTAKE_DATABASE_URL": "postgresql://hapex_intake@/hapex?host=/nonexistent",
    "INTAKE_SESSION_SECRET": TOKEN + "s",
    "AGENT_SERVICE_TOKEN": TOKEN + "t",
    "AGENT_SERVICE_URL": "https://agent.example:8444",
    "INTAKE_PUBLIC_URL": "https://app.example",
    "TLS_TERMINATION": "proxy",
    "TRUSTED_PROXY_COUNT": "1",
    "HAPEX_BIND": "10.0.0.5:8080",
}


@pytest.fixture
def serve(monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith(("INTAKE_", "AGENT_", "TLS_", "HAPEX_", "TRUSTED_", "CREDENTIAL_")):
            monkeypatch.delenv(name)

    def no_exec(*args: object) -> None:
        raise AssertionError("hapex serve went on to start gunicorn")

    monkeypatch.setattr(os, "execve", no_exec)

    def run(**changes: str | None) -> tuple[int, str]:
        for name, value in {**INTAKE, **changes}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        code = main(["serve", "intake"])
        return code, capsys.readouterr().err

    return run


@pytest.mark.parametrize(("changes", "variable"), [
    ({"TRUSTED_PROXY_COUNT": "0"}, "TRUSTED_PROXY_COUNT"),
    ({"TRUSTED_PROXY_COUNT": None}, "TRUSTED_PROXY_COUNT"),
    ({"TLS_CERT_FILE": "/run/hapex/tls/intake.pem"}, "TLS_CERT_FILE"),
    ({"TLS_KEY_FILE": "/run/hapex/tls/intake-key.pem"}, "TLS_KEY_FILE"),
    ({"HAPEX_BIND": None}, "HAPEX_BIND"),
    ({"HAPEX_BIND": "0.0.0.0:8080"}, "HAPEX_BIND"),
    ({"HAPEX_BIND": "93.184.216.34:8080"}, "HAPEX_BIND"),
    ({"HAPEX_BIND": "intake.internal:8080"}, "HAPEX_BIND"),
    ({"INTAKE_SECURE_COOKIES": "false"}, "INTAKE_SECURE_COOKIES"),
    ({"TLS_TERMINATION": "balancer"}, "TLS_TERMINATION"),
])
def test_contradictory_proxy_settings_stop_the_start_naming_the_variable(serve, changes, variable):
    code, err = serve(**changes)
    assert code == 2
    assert f"configuration error: {variable} " in err


def test_without_tls_termination_the_service_still_wants_its_own_certificate(serve):
    code, err = serve(TLS_TERMINATION=None, HAPEX_BIND=None)
    assert code == 2
    assert "TLS_CERT_FILE must be set" in err


@pytest.mark.parametrize("bind", ["10.0.0.5:8080", "127.0.0.1:8443", "[fd00::5]:8443", "172.20.1.2:80",
                                  "unix:/run/hapex/intake.sock"])
def test_proxy_mode_binds_to_a_private_address_or_socket(bind):
    assert private_bind(bind) == bind


def test_a_proxy_count_alone_keeps_in_process_tls():
    """A balancer that re-encrypts to the service sets TRUSTED_PROXY_COUNT only: still TLS here."""
    settings = LauncherSettings.from_env({"TRUSTED_PROXY_COUNT": "1", "TLS_CERT_FILE": "/c.pem",
                                          "TLS_KEY_FILE": "/k.pem"})
    assert not settings.tls_by_proxy
    assert settings.served_bind("intake") == "0.0.0.0:8443"
    with pytest.raises(ConfigError):
        LauncherSettings.from_env({"TLS_TERMINATION": "proxy", "TLS_CERT_FILE": "/c.pem"}).served_bind("intake")
