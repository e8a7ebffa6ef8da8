"""What the `hapex` command and gunicorn read of their own environment, once, at start.

The command is a launcher: it hands its environment on to the services it starts (which read
theirs through IntakeConfig and AgentConfig) and reads only these few settings itself, in
`main()`; gunicorn reads GunicornSettings in deploy/gunicorn.conf.py.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from shared.config import ConfigError, Environment, is_loopback_host, log_format, tls_terminated_by_proxy

DEFAULT_PORTS = {"intake": 8443, "agent": 8444, "sandbox": 8445}
PORT_VARIABLES = {"intake": "INTAKE_PORT", "agent": "AGENT_PORT", "sandbox": "HAPEX_SANDBOX_PORT"}


@dataclass(frozen=True)
class LauncherSettings:
    """The command's own settings, and the whole environment it hands to what it starts."""

    environ: Mapping[str, str] = field(repr=False)
    # The owner's connection string (migrations, the local stack); None means the embedded server.
    database_url: str | None = field(default=None, repr=False)
    data_dir: str | None = None
    workers: int = 1
    bind_host: str = "0.0.0.0"  # noqa: S104 - containers listen on all
    bind: str | None = None
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # TLS_TERMINATION=proxy: the platform's balancer serves TLS, the service plain HTTP on HAPEX_BIND only.
    tls_by_proxy: bool = False
    # The local provider sandbox beside `hapex run` (HAPEX_SANDBOX=0 turns it off); never in production.
    sandbox: bool = True
    # The command's own logging (`hapex credentials rotate`, `hapex admin`, ...), as the services'.
    log_level: str = "INFO"
    log_format: str = "auto"

    VARIABLES: ClassVar[tuple[str, ...]] = (
        "DATABASE_URL", "HAPEX_DATA_DIR", "HAPEX_WORKERS", "HAPEX_BIND_HOST", "HAPEX_BIND", *PORT_VARIABLES.values(),
        "TLS_CERT_FILE", "TLS_KEY_FILE", "HAPEX_SANDBOX", "LOG_LEVEL", "LOG_FORMAT", "TLS_TERMINATION",
    )

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return cls.VARIABLES

    def served_bind(self, service: str) -> str:
        """Where `hapex serve` listens: HAPEX_BIND, else the bind host and the service's port.

        Behind a TLS-terminating balancer the service speaks plain HTTP, so only on an address the
        operator named that the internet cannot reach: a private or loopback IP, or a unix socket.
        """
        if not self.tls_by_proxy:
            return self.bind or f"{self.bind_host}:{self.ports[service]}"
        for name, value in (("TLS_CERT_FILE", self.tls_cert_file), ("TLS_KEY_FILE", self.tls_key_file)):
            if value:
                raise ConfigError(name, "must not be set when TLS_TERMINATION=proxy (the balancer serves TLS; "
                                        "unset one of the two)")
        return private_bind(self.bind)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LauncherSettings:
        """Without a mapping, the process environment: read here and in the config classes only."""
        source = os.environ if environ is None else environ
        env = Environment(source, declared=cls.variables())
        return cls(
            environ=dict(source),
            database_url=env.database_url("DATABASE_URL", required=False) or None,
            data_dir=env.get("HAPEX_DATA_DIR"),
            workers=env.integer("HAPEX_WORKERS", 1, minimum=0, maximum=64),
            bind_host=env.get("HAPEX_BIND_HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104
            bind=env.get("HAPEX_BIND"),
            ports={service: env.integer(variable, DEFAULT_PORTS[service], minimum=1, maximum=65535)
                   for service, variable in PORT_VARIABLES.items()},
            tls_cert_file=env.get("TLS_CERT_FILE"),
            tls_key_file=env.get("TLS_KEY_FILE"),
            tls_by_proxy=tls_terminated_by_proxy(env),
            sandbox=env.boolean("HAPEX_SANDBOX", True),
            log_level=(env.get("LOG_LEVEL", "INFO") or "INFO").upper(),
            log_format=log_format(env),
        )


def private_bind(bind: str | None) -> str:
    """HAPEX_BIND as host:port on a private, loopback or link-local IP address, or unix:/path."""
    usage = "the balancer forwards to (10.0.0.5:8443, [fd00::5]:8443 or unix:/run/hapex.sock)"
    if not bind:
        raise ConfigError("HAPEX_BIND", f"must be set when TLS_TERMINATION=proxy: the private address {usage}")
    if bind.startswith("unix:"):
        return bind
    host, _, port = bind.rpartition(":")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ConfigError("HAPEX_BIND", f"must be an IP address and port when TLS_TERMINATION=proxy: the private "
                                        f"address {usage}") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("HAPEX_BIND", "must end with a port, like 10.0.0.5:8443")
    if address.is_unspecified or address.is_global or address.is_multicast:
        raise ConfigError("HAPEX_BIND", "must be a private address when TLS_TERMINATION=proxy, not all interfaces "
                                        "or a public one: the service speaks plain HTTP there")
    return bind


def sandbox_bind_host(env: Environment) -> str:
    """The sandbox serves this machine only: it hands out tokens to whoever consents on its pages and
    answers as Claude to its derived key, so it never listens on an address another machine reaches."""
    host = env.get("HAPEX_BIND_HOST", "127.0.0.1") or "127.0.0.1"
    if not is_loopback_host(host):
        raise ConfigError("HAPEX_BIND_HOST", "must be a loopback address for the sandbox (127.0.0.1, ::1 or "
                                             "localhost): it serves only this machine")
    return host


@dataclass(frozen=True)
class SandboxSettings:
    """What `hapex sandbox` (started by `hapex run`) reads: where it serves, whom it serves, its secret."""

    secret: str = field(repr=False)
    base_url: str
    intake_url: str
    bind: str
    tls_cert_file: str
    tls_key_file: str
    state_file: Path | None
    # Short, so that a run refreshes its tokens (and a rotation happens) while you watch.
    access_token_seconds: int = 120

    VARIABLES: ClassVar[tuple[str, ...]] = (
        "HAPEX_SANDBOX_SECRET", "HAPEX_SANDBOX_URL", "INTAKE_PUBLIC_URL", "HAPEX_BIND_HOST", "HAPEX_SANDBOX_PORT",
        "TLS_CERT_FILE", "TLS_KEY_FILE", "HAPEX_SANDBOX_STATE_FILE", "HAPEX_SANDBOX_ACCESS_TOKEN_SECONDS",
    )

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return cls.VARIABLES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SandboxSettings:
        env = Environment(environ, declared=cls.variables())
        port = env.integer("HAPEX_SANDBOX_PORT", DEFAULT_PORTS["sandbox"], minimum=1, maximum=65535)
        secret = env.secret_token("HAPEX_SANDBOX_SECRET")
        assert secret is not None
        state_file = env.get("HAPEX_SANDBOX_STATE_FILE")
        return cls(
            secret=secret.reveal(),
            base_url=env.https_url("HAPEX_SANDBOX_URL", required=False) or f"https://localhost:{port}",
            intake_url=env.https_url("INTAKE_PUBLIC_URL") or "",
            bind=f"{sandbox_bind_host(env)}:{port}",
            tls_cert_file=env.existing_file("TLS_CERT_FILE") or "",
            tls_key_file=env.existing_file("TLS_KEY_FILE") or "",
            state_file=Path(state_file) if state_file else None,
            access_token_seconds=env.integer("HAPEX_SANDBOX_ACCESS_TOKEN_SECONDS", 120, minimum=5, maximum=86400),
        )


@dataclass(frozen=True)
class GunicornSettings:
    """What deploy/gunicorn.conf.py takes from the environment `hapex serve` gave it."""

    service: str = "hapex"
    bind: str = "0.0.0.0:8443"  # noqa: S104
    workers: int = 2
    threads: int = 4
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_by_proxy: bool = False
    log_level: str = "info"
    log_format: str = "auto"

    VARIABLES: ClassVar[tuple[str, ...]] = (
        "HAPEX_SERVICE", "HAPEX_BIND", "WEB_CONCURRENCY", "GUNICORN_THREADS", "TLS_CERT_FILE", "TLS_KEY_FILE",
        "LOG_LEVEL", "LOG_FORMAT", "TLS_TERMINATION",
    )

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return cls.VARIABLES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GunicornSettings:
        env = Environment(environ, declared=cls.variables())
        return cls(
            service=env.get("HAPEX_SERVICE", "hapex") or "hapex",
            bind=env.get("HAPEX_BIND", "0.0.0.0:8443") or "0.0.0.0:8443",  # noqa: S104
            workers=env.integer("WEB_CONCURRENCY", 2, minimum=1, maximum=256),
            threads=env.integer("GUNICORN_THREADS", 4, minimum=1, maximum=256),
            tls_cert_file=env.get("TLS_CERT_FILE"),
            tls_key_file=env.get("TLS_KEY_FILE"),
            tls_by_proxy=tls_terminated_by_proxy(env),
            log_level=(env.get("LOG_LEVEL", "info") or "info").lower(),
            log_format=log_format(env),
        )
