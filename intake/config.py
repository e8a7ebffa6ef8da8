"""The intake service's configuration, read once at start. It has no field for CREDENTIAL_ENCRYPTION_KEY.

Of the providers' settings it reads endpoint overrides and client ids, never a client secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from shared.catalog import UNCONFIGURED, ResolvedCatalog
from shared.config import (
    ConfigError,
    Environment,
    PoolSettings,
    TransportSettings,
    log_format,
    provider_variables,
    refuse_loopback_providers,
    resolve_catalog,
    tls_terminated_by_proxy,
)
from shared.passwords import PASSWORD_HASH_PROFILES
from shared.secret import Secret

# "owasp": argon2id at or above OWASP's minimum; "test": cheap hashing, test mode only.


@dataclass(frozen=True)
class IntakeConfig:
    """What the public web app needs; it can call the agent but never decrypt."""

    database_url: str = field(repr=False)
    session_secret: Secret
    agent_service_url: str
    agent_service_ca: str | None
    agent_service_token: Secret
    trusted_proxy_count: int = 0
    # TLS_TERMINATION=proxy: the platform's balancer serves TLS; requests it did not receive over HTTPS are refused.
    tls_by_proxy: bool = False
    secure_cookies: bool = True
    # The pages' queries are planned for the client at hand (see PoolSettings.custom_plans).
    pool: PoolSettings = PoolSettings(custom_plans=True)
    log_level: str = "INFO"
    log_format: str = "auto"
    password_hash_profile: str = "owasp"  # noqa: S105 - a cost profile, not a password
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # The origin clients reach the intake at; OAuth redirect URIs are built on it, never on
    # the request's Host header. None only where no OAuth provider is configured.
    public_url: str | None = None
    # The catalog's providers as this deployment sets them up: endpoints and client ids only.
    providers: ResolvedCatalog = UNCONFIGURED

    OWN_VARIABLES: ClassVar[tuple[str, ...]] = (
        "INTAKE_DATABASE_URL", "INTAKE_SESSION_SECRET", "AGENT_SERVICE_URL", "AGENT_SERVICE_CA",
        "AGENT_SERVICE_TOKEN", *TransportSettings.VARIABLES, "INTAKE_SECURE_COOKIES", "LOG_LEVEL", "LOG_FORMAT",
        "INTAKE_PASSWORD_HASH_PROFILE", "HAPEX_TEST_MODE", "INTAKE_SESSION_IDLE_MINUTES",
        "INTAKE_SESSION_ABSOLUTE_HOURS", "INTAKE_PUBLIC_URL", *PoolSettings.variables("INTAKE"),
    )

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """Every variable the intake reads; from_env may read no other."""
        return cls.OWN_VARIABLES + provider_variables()

    def __post_init__(self) -> None:
        if self.password_hash_profile not in PASSWORD_HASH_PROFILES:
            raise ConfigError("INTAKE_PASSWORD_HASH_PROFILE", "must be owasp or test")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme != "https" or not parts.hostname:
                raise ConfigError("INTAKE_PUBLIC_URL", "must be an https:// URL")
            if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
                raise ConfigError("INTAKE_PUBLIC_URL", "must be an origin only, like https://app.example.com")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntakeConfig:
        env = Environment(environ, declared=cls.variables())
        session_secret = env.secret_token("INTAKE_SESSION_SECRET")
        token = env.secret_token("AGENT_SERVICE_TOKEN")
        assert session_secret is not None and token is not None
        profile = env.get("INTAKE_PASSWORD_HASH_PROFILE", "owasp") or "owasp"
        if profile == "test" and not env.boolean("HAPEX_TEST_MODE", False):
            raise ConfigError("INTAKE_PASSWORD_HASH_PROFILE", "may be test only when HAPEX_TEST_MODE=1")
        public_url = env.https_url("INTAKE_PUBLIC_URL", required=False)
        providers = resolve_catalog(env)
        refuse_loopback_providers(providers, public_url, env)
        if public_url is None and providers.has_oauth_client():
            # Consent needs exact redirect URIs; guessing them from the Host header would let
            # a forged header choose where a provider sends the authorization code.
            raise ConfigError("INTAKE_PUBLIC_URL", "must be set when an OAuth provider's client id is set")
        transport = TransportSettings.from_env(env)
        secure_cookies = env.boolean("INTAKE_SECURE_COOKIES", True)
        if transport.tls_by_proxy and not secure_cookies:
            raise ConfigError("INTAKE_SECURE_COOKIES", "must be true when TLS_TERMINATION=proxy: browsers reach "
                                                       "the intake over HTTPS only, at the balancer")
        return cls(
            database_url=env.database_url("INTAKE_DATABASE_URL"),
            session_secret=session_secret,
            agent_service_url=env.https_url("AGENT_SERVICE_URL") or "",
            agent_service_ca=env.existing_file("AGENT_SERVICE_CA", required=False),
            agent_service_token=token,
            trusted_proxy_count=transport.trusted_proxy_count,
            tls_by_proxy=transport.tls_by_proxy,
            secure_cookies=secure_cookies,
            pool=PoolSettings.from_env(env, "INTAKE", custom_plans=True),
            log_level=env.get("LOG_LEVEL", "INFO") or "INFO",
            log_format=log_format(env),
            password_hash_profile=profile,
            session_idle_minutes=env.integer("INTAKE_SESSION_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60),
            session_absolute_hours=env.integer("INTAKE_SESSION_ABSOLUTE_HOURS", 12, minimum=1, maximum=24 * 30),
            public_url=public_url,
            providers=providers,
        )

    # What `hapex site build` reads: the pages state these settings of the intake they link to.
    PUBLIC_SITE_VARIABLES: ClassVar[tuple[str, ...]] = (
        "INTAKE_PUBLIC_URL", "INTAKE_SECURE_COOKIES", "INTAKE_SESSION_IDLE_MINUTES", "INTAKE_SESSION_ABSOLUTE_HOURS",
        "TLS_TERMINATION",
    )

    @classmethod
    def for_public_site(cls, environ: Mapping[str, str] | None = None) -> IntakeConfig:
        """The intake's settings as its public pages state them, for rendering them to static files.

        The build serves nothing and connects to nothing: no database, agent or secret of the intake's
        is read, and the signing secret and token are throwaway values nothing outside the build sees.
        """
        env = Environment(environ, declared=cls.PUBLIC_SITE_VARIABLES + provider_variables())
        public_url = env.https_url("INTAKE_PUBLIC_URL")
        providers = resolve_catalog(env)
        refuse_loopback_providers(providers, public_url, env)
        return cls(
            database_url="",
            session_secret=Secret(secrets.token_urlsafe(32)),
            agent_service_url="https://agent.invalid",
            agent_service_ca=None,
            agent_service_token=Secret(secrets.token_urlsafe(32)),
            secure_cookies=env.boolean("INTAKE_SECURE_COOKIES", True),
            tls_by_proxy=tls_terminated_by_proxy(env),
            session_idle_minutes=env.integer("INTAKE_SESSION_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60),
            session_absolute_hours=env.integer("INTAKE_SESSION_ABSOLUTE_HOURS", 12, minimum=1, maximum=24 * 30),
            public_url=public_url,
            providers=providers,
        )
