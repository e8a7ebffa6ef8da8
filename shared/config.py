"""Reading configuration from the environment, failing early and naming what is wrong.

Each service builds its own frozen dataclass from these readers once, at start; a value that
is missing or malformed raises ConfigError naming the variable and never its value. Only the
config modules read the process environment (tests/unit/test_configuration_sources.py); each
config class declares the names it reads, and reading an undeclared one is a programming error.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import ClassVar
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from shared.catalog import ENDPOINT_FIELDS, PROVIDERS, AuthKind, Provider, ResolvedCatalog
from shared.secret import Secret

MIN_TOKEN_LENGTH = 32


class ConfigError(RuntimeError):
    """The service's configuration is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable} {problem}")


class UndeclaredVariable(LookupError):
    """A config class read a variable it does not list in its declared names."""


class Environment:
    """Typed reads from an environment mapping; every error names the variable.

    Without a mapping it reads the process environment: built so only by the config classes.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, declared: Iterable[str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._declared = None if declared is None else frozenset(declared)

    def get(self, name: str, default: str | None = None) -> str | None:
        if self._declared is not None and name not in self._declared:
            raise UndeclaredVariable(name)
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(name, "must be set")
        return value

    def secret_token(self, name: str, *, required: bool = True) -> Secret | None:
        """A bearer token or signing key: long, random-looking, never printed."""
        value = self.get(name)
        if value is None:
            if required:
                raise ConfigError(name, "must be set")
            return None
        if len(value) < MIN_TOKEN_LENGTH:
            raise ConfigError(name, f"must be at least {MIN_TOKEN_LENGTH} characters long")
        if len(set(value)) < 8:
            raise ConfigError(name, "must be random (too few distinct characters)")
        return Secret(value)

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, "must be an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(name, f"must be {bound}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, "must be true or false")

    def database_url(self, name: str, *, required: bool = True) -> str:
        value = self.require(name) if required else self.get(name)
        if value is None:
            return ""
        if urlsplit(value).scheme not in {"postgresql", "postgres"} and "=" not in value:
            raise ConfigError(name, "must be a postgresql:// URL or a libpq connection string")
        check_database_tls(name, value)
        return value

    def https_url(self, name: str, *, required: bool = True) -> str | None:
        value = self.get(name)
        if value is None:
            if required:
                raise ConfigError(name, "must be set")
            return None
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise ConfigError(name, "must be an https:// URL")
        if not parts.hostname:
            raise ConfigError(name, "must name a host")
        return value.rstrip("/")

    def existing_file(self, name: str, *, required: bool = True) -> str | None:
        value = self.get(name)
        if value is None:
            if required:
                raise ConfigError(name, "must be set")
            return None
        if not os.path.isfile(value):
            raise ConfigError(name, "must name a readable file")
        return value


def is_local_host(host: str) -> bool:
    """Whether traffic to the host stays on this machine: loopback, or a unix socket directory (libpq)."""
    host = host.strip().strip("[]")
    return host.startswith(("/", "@")) or is_loopback_host(host)


def check_database_tls(name: str, dsn: str) -> None:
    """A database on another host is reached only over TLS that verifies its certificate and name.

    sslmode=require encrypts but accepts any certificate (a man in the middle); verify-full also
    checks the CA and the host name. The message names the variable, never the DSN (it holds a password).
    """
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ConfigError(name, "must be a postgresql:// URL or a libpq connection string") from None
    hosts = [h for h in str(params.get("host") or "").split(",") if h.strip()]
    hosts += [h for h in str(params.get("hostaddr") or "").split(",") if h.strip()]
    if all(is_local_host(host) for host in hosts):  # no host at all: libpq's unix socket
        return
    if params.get("sslmode") != "verify-full":
        raise ConfigError(name, "must set sslmode=verify-full (the database is on another host, "
                                "and nothing but verified TLS may carry its traffic)")


@dataclass(frozen=True)
class PoolSettings:
    """How many database connections one process keeps, and how long a request waits for one."""

    min_size: int = 1
    max_size: int = 10
    # Seconds a request waits for a working connection before answering "briefly unavailable":
    # short, so an outage is a quick 503 rather than a page that hangs.
    checkout_timeout: float = 2.0
    # Seconds a connection is kept before it is replaced (psycopg_pool's default, an hour): shorter
    # behind a managed server or pooler that drops long-lived connections, or to follow a failover.
    max_lifetime: float = 3600.0
    # The URL points at a pooler in transaction mode (PgBouncer pool_mode=transaction): each transaction
    # may run on another server connection, so no server-side prepared statements (psycopg prepares a
    # query after its fifth run on a connection). Tenant isolation needs nothing more: app.client_id is
    # transaction-local (tests/integration/test_pgbouncer.py).
    transaction_pooler: bool = False
    # Plan every statement for its own parameters: no server-side prepared statements, so never the
    # one generic plan PostgreSQL may switch a prepared statement to after five runs. A page query's
    # best plan depends on how many rows the client has, and the generic plan made for an average
    # client read all of a big client's runs (317 ms instead of 0.7 ms, `make bench`, a year of records).
    custom_plans: bool = False

    @classmethod
    def from_env(cls, env: Environment, prefix: str, *, custom_plans: bool = False) -> PoolSettings:
        max_size = env.integer(f"{prefix}_DB_POOL_MAX", 10, minimum=1, maximum=200)
        min_size = env.integer(f"{prefix}_DB_POOL_MIN", 1, minimum=0, maximum=max_size)
        checkout_timeout = env.integer(f"{prefix}_DB_POOL_TIMEOUT", 2, minimum=1, maximum=120)
        max_lifetime = env.integer(f"{prefix}_DB_POOL_MAX_LIFETIME", 3600, minimum=60, maximum=86400)
        return cls(min_size=min_size, max_size=max_size, checkout_timeout=float(checkout_timeout),
                   max_lifetime=float(max_lifetime),
                   transaction_pooler=env.boolean(f"{prefix}_DB_TRANSACTION_POOLER", False),
                   custom_plans=custom_plans)

    @staticmethod
    def variables(prefix: str) -> tuple[str, ...]:
        return (f"{prefix}_DB_POOL_MAX", f"{prefix}_DB_POOL_MIN", f"{prefix}_DB_POOL_TIMEOUT",
                f"{prefix}_DB_POOL_MAX_LIFETIME", f"{prefix}_DB_TRANSACTION_POOLER")


TLS_TERMINATION_MODES = ("hapex", "proxy")


@dataclass(frozen=True)
class TransportSettings:
    """Who serves TLS, and how many proxies in front of the service may set X-Forwarded-*.

    By default ("hapex") the service serves TLS itself, behind a balancer or not. "proxy" (the platform's
    load balancer terminates TLS and forwards plain HTTP on a private network) must be said explicitly
    with TLS_TERMINATION: TRUSTED_PROXY_COUNT alone is set by deployments whose balancer re-encrypts to
    the service's own TLS, and must not silently turn those into plain HTTP. It still names the hops,
    which proxy mode needs to read X-Forwarded-Proto from the balancer and from nobody else.
    """

    tls_by_proxy: bool = False
    trusted_proxy_count: int = 0

    VARIABLES: ClassVar[tuple[str, ...]] = ("TLS_TERMINATION", "TRUSTED_PROXY_COUNT")

    @classmethod
    def from_env(cls, env: Environment) -> TransportSettings:
        return cls(tls_by_proxy=tls_terminated_by_proxy(env),
                   trusted_proxy_count=trusted_proxy_count(env))


def tls_terminated_by_proxy(env: Environment) -> bool:
    """TLS_TERMINATION: hapex (the default: the service serves TLS itself) or proxy (the platform's balancer)."""
    mode = (env.get("TLS_TERMINATION", "hapex") or "hapex").lower()
    if mode not in TLS_TERMINATION_MODES:
        raise ConfigError("TLS_TERMINATION", "must be hapex (the service serves TLS itself, the default) "
                                             "or proxy (the platform's load balancer terminates it)")
    return mode == "proxy"


def trusted_proxy_count(env: Environment) -> int:
    """TRUSTED_PROXY_COUNT: the proxies in front of the service; at least one when TLS_TERMINATION=proxy."""
    count = env.integer("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)
    if count == 0 and tls_terminated_by_proxy(env):
        raise ConfigError("TRUSTED_PROXY_COUNT", "must be 1 or more when TLS_TERMINATION=proxy: the balancer's "
                                                 "hops, the only ones whose X-Forwarded-Proto counts")
    return count


def log_format(env: Environment) -> str:
    """LOG_FORMAT: json, text, or auto (readable lines on a terminal, JSON elsewhere)."""
    value = (env.get("LOG_FORMAT", "auto") or "auto").lower()
    if value not in ("auto", "json", "text"):
        raise ConfigError("LOG_FORMAT", "must be auto, json or text")
    return value


def endpoint_variable(provider: Provider, endpoint: str) -> str:
    return f"{provider.env_prefix}_{endpoint.upper()}"


def provider_variables(providers: Mapping[str, Provider] = PROVIDERS, *, secrets: bool = False) -> tuple[str, ...]:
    """HAPEX_<KEY>_<ENDPOINT> of every provider, _CLIENT_ID of each OAuth one, and its _CLIENT_SECRET if asked."""
    names = [endpoint_variable(p, endpoint) for p in providers.values() for endpoint in ENDPOINT_FIELDS]
    names += [f"{p.env_prefix}_NAME" for p in providers.values()]
    for provider in providers.values():
        if provider.auth_kind is AuthKind.OAUTH2:
            names.append(f"{provider.env_prefix}_CLIENT_ID")
            if secrets:
                names.append(f"{provider.env_prefix}_CLIENT_SECRET")
    return tuple(names)


def resolve_catalog(env: Environment, providers: Mapping[str, Provider] = PROVIDERS) -> ResolvedCatalog:
    """The providers with this deployment's endpoint overrides and OAuth client ids (no secret)."""
    resolved = {}
    client_ids = {}
    for key, provider in providers.items():
        endpoints = {}
        for endpoint in ENDPOINT_FIELDS:
            variable = endpoint_variable(provider, endpoint)
            value = env.get(variable)
            if value:
                parts = urlsplit(value)
                # Tokens, codes and client secrets travel to these: never in clear, wherever they point.
                if parts.scheme != "https" or not parts.hostname:
                    raise ConfigError(variable, "must be an https:// URL")
                endpoints[endpoint] = value
        resolved[key] = provider.with_endpoints(endpoints)
        name = env.get(f"{provider.env_prefix}_NAME")
        if name:
            # How this deployment names the provider to clients, e.g. "Slack (sandbox)" under `make run`.
            resolved[key] = replace(resolved[key], name=name[:80])
        if provider.auth_kind is AuthKind.OAUTH2:
            client_id = env.get(f"{provider.env_prefix}_CLIENT_ID")
            if client_id:
                client_ids[key] = client_id
    return ResolvedCatalog(resolved, client_ids)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_loopback_providers(providers: ResolvedCatalog, public_url: str | None, env: Environment) -> None:
    """Providers on this machine (a local sandbox or stand-in) serve only a Hapex on this machine.

    A browser sent to a provider on localhost can reach it only when it runs on the same machine as
    that provider, which is true of a local stack and never of a public deployment: a public
    INTAKE_PUBLIC_URL with a loopback provider endpoint is a local configuration that leaked into one.
    """
    if public_url is None or is_loopback_host(urlsplit(public_url).hostname):
        return
    for provider in providers.providers.values():
        for endpoint in ENDPOINT_FIELDS:
            value = getattr(provider, endpoint)
            if env.get(endpoint_variable(provider, endpoint)) and is_loopback_host(urlsplit(value or "").hostname):
                raise ConfigError(endpoint_variable(provider, endpoint),
                                  "points at this machine (a local sandbox or stand-in) while INTAKE_PUBLIC_URL "
                                  "is not local: a public deployment must use the provider's real endpoints")
