"""The agent service's configuration, read once from the environment at start-up.

The API, the workers and the operator commands each build theirs here and hand the parts on:
nothing else in the agent reads the environment, so a malformed setting stops start-up
(naming the variable, never its value) instead of failing a run or a job later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import ClassVar

from agent_service.connections.provider_oauth import OAuthClient
from agent_service.notifications.mailer import IMPLICIT_TLS_PORT, SMTPSettings
from agent_service.runs.prices import DEFAULT_LLM_MODEL as DEFAULT_LLM_MODEL  # re-exported: the default is the table's
from agent_service.runs.prices import MODEL_PRICES
from agent_service.vault.keys import parse_key, parse_key_list
from shared.catalog import PROVIDERS, UNCONFIGURED, AuthKind, ResolvedCatalog
from shared.config import (
    ConfigError,
    Environment,
    PoolSettings,
    TransportSettings,
    is_local_host,
    log_format,
    provider_variables,
    refuse_loopback_providers,
    resolve_catalog,
)
from shared.passwords import PASSWORD_HASH_PROFILES
from shared.secret import Secret


def llm_model(env: Environment) -> str:
    """HAPEX_LLM_MODEL, which must be a model the price table prices (else every call would be charged a guess)."""
    model = env.get("HAPEX_LLM_MODEL", DEFAULT_LLM_MODEL) or DEFAULT_LLM_MODEL
    if model not in MODEL_PRICES:
        raise ConfigError("HAPEX_LLM_MODEL", "must be a model of the price table (agent_service/runs/prices.py): "
                                             + ", ".join(sorted(MODEL_PRICES)))
    return model


@dataclass(frozen=True)
class RunLimits:
    """How long and how often a run may try."""

    run_seconds: float = 900.0
    step_attempts: int = 4
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 30.0
    # A Retry-After longer than this fails the step instead of holding a worker.
    max_retry_after_seconds: float = 120.0
    refresh_margin_seconds: float = 300.0
    retention_days: int = 400

    VARIABLES: ClassVar[tuple[str, ...]] = (
        "HAPEX_RUN_TIME_LIMIT_SECONDS", "HAPEX_STEP_MAX_ATTEMPTS", "HAPEX_RETRY_BASE_MS", "HAPEX_RUN_RETENTION_DAYS",
    )

    @classmethod
    def from_env(cls, env: Environment) -> RunLimits:
        return cls(
            run_seconds=float(env.integer("HAPEX_RUN_TIME_LIMIT_SECONDS", 900, minimum=10, maximum=86400)),
            step_attempts=env.integer("HAPEX_STEP_MAX_ATTEMPTS", 4, minimum=1, maximum=10),
            backoff_base_seconds=env.integer("HAPEX_RETRY_BASE_MS", 1000, minimum=0, maximum=60000) / 1000,
            # 31 at least: the prune also deletes cost events, and a shorter age would reach into the current
            # (UTC) month on its 31st, so the month's spend and its budget would read low.
            retention_days=env.integer("HAPEX_RUN_RETENTION_DAYS", 400, minimum=31, maximum=3650),
        )


SMTP_VARIABLES = ("HAPEX_SMTP_HOST", "HAPEX_SMTP_PORT", "HAPEX_SMTP_FROM", "HAPEX_SMTP_USERNAME",
                  "HAPEX_SMTP_PASSWORD", "HAPEX_SMTP_STARTTLS")


def smtp_settings(env: Environment) -> SMTPSettings | None:
    """None when no SMTP host is set; ConfigError naming the variable when one is malformed."""
    host = env.get("HAPEX_SMTP_HOST")
    if host is None:
        return None
    if any(c in host for c in "/@: \r\n"):
        raise ConfigError("HAPEX_SMTP_HOST", "must be a host name (the port goes in HAPEX_SMTP_PORT)")
    port = env.integer("HAPEX_SMTP_PORT", 587, minimum=1, maximum=65535)
    sender = env.require("HAPEX_SMTP_FROM")
    address = parseaddr(sender)[1]
    if "\r" in sender or "\n" in sender or "@" not in address or address.startswith("@"):
        raise ConfigError("HAPEX_SMTP_FROM", "must be an email address, optionally with a name")
    username = env.get("HAPEX_SMTP_USERNAME")
    password = env.get("HAPEX_SMTP_PASSWORD")
    if username and not password:
        raise ConfigError("HAPEX_SMTP_PASSWORD", "must be set when HAPEX_SMTP_USERNAME is")
    starttls = env.boolean("HAPEX_SMTP_STARTTLS", True)
    if username and not starttls and port != IMPLICIT_TLS_PORT:
        raise ConfigError("HAPEX_SMTP_STARTTLS", "must be true when HAPEX_SMTP_USERNAME is set, "
                                                 "or the password would cross the network in clear")
    if not starttls and port != IMPLICIT_TLS_PORT and not is_local_host(host):
        raise ConfigError("HAPEX_SMTP_STARTTLS", "must be true unless HAPEX_SMTP_HOST is this machine, "
                                                 "or notices would cross the network in clear")
    return SMTPSettings(host=host, port=port, sender=sender, username=username,
                        password=Secret(password) if password else None, starttls=starttls)


def oauth_clients(env: Environment, providers: ResolvedCatalog) -> dict[str, OAuthClient]:
    """Every OAuth provider with both a client id and secret set; the others are unavailable."""
    clients = {}
    for key, provider in providers.providers.items():
        if provider.auth_kind is not AuthKind.OAUTH2:
            continue
        client_id = providers.client_id(key)
        secret = env.get(f"{provider.env_prefix}_CLIENT_SECRET")
        if client_id and secret:
            clients[key] = OAuthClient(client_id, Secret(secret))
    return clients


def _credential_keys(env: Environment) -> tuple[Secret, Secret | None]:
    key = env.require("CREDENTIAL_ENCRYPTION_KEY")
    parse_key("CREDENTIAL_ENCRYPTION_KEY", key)
    retired = env.get("CREDENTIAL_ENCRYPTION_KEYS_RETIRED")
    parse_key_list("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", retired)
    return Secret(key), Secret(retired) if retired else None


KEY_VARIABLES = ("CREDENTIAL_ENCRYPTION_KEY", "CREDENTIAL_ENCRYPTION_KEYS_RETIRED")


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent API and its workers need; secrets held as Secret."""

    database_url: str = field(repr=False)
    service_token: Secret
    service_token_previous: Secret | None
    admin_token: Secret
    credential_encryption_key: Secret
    credential_encryption_keys_retired: Secret | None
    pool: PoolSettings = PoolSettings()
    # Who serves the API's TLS (TLS_TERMINATION) and the proxies trusted for X-Forwarded-* in front of it.
    transport: TransportSettings = TransportSettings()
    log_level: str = "INFO"
    log_format: str = "auto"
    # The catalog's providers as this deployment sets them up, and Hapex's client at each.
    providers: ResolvedCatalog = UNCONFIGURED
    oauth_clients: Mapping[str, OAuthClient] = field(default_factory=dict)
    llm_api_key: Secret | None = None
    llm_model: str = DEFAULT_LLM_MODEL
    # CA bundle for calls to providers; None means certifi's.
    outbound_ca_bundle: str | None = None
    limits: RunLimits = RunLimits()
    smtp: SMTPSettings | None = None
    # Only `make bench` sets this, so that webhook steps can call its stand-in on 127.0.0.1.
    allow_loopback_webhooks: bool = False
    worker_concurrency: int = 4
    # Seconds a stopping worker lets the step in flight finish before handing its job back: longer
    # than one provider call may take (connect 5 s + read 30 s), so a normal stop interrupts nothing.
    worker_grace_seconds: float = 45.0
    # The workers' CPU niceness (WORKER_NICE, 0 to 19): where they share cores with the intake (one
    # machine, `make run`), pages go before batch work such as the 08:00 rush. 10 weighs a worker at
    # about a ninth of a page's process when both want the CPU; a worker alone on its machine is not
    # slowed at all, and 10 (not 19) still leaves it a tenth of a core when the intake is saturated.
    worker_nice: int = 10
    # Where clients reach the intake: the origin and relying party id passkeys are verified against
    # (never a Host header). None (test stacks without it): passkeys are unavailable.
    intake_public_url: str | None = None
    # argon2id cost of the hashes the agent makes (a changed password, an upgraded one) and of the
    # check made for an unknown address; "test" only in test mode.
    password_hash_profile: str = "owasp"  # noqa: S105 - a cost profile, not a password

    OWN_VARIABLES: ClassVar[tuple[str, ...]] = (
        "AGENT_DATABASE_URL", "AGENT_SERVICE_TOKEN", "AGENT_SERVICE_TOKEN_PREVIOUS", "AGENT_ADMIN_TOKEN",
        *KEY_VARIABLES, "LOG_LEVEL", "LOG_FORMAT", *PoolSettings.variables("AGENT"), "ANTHROPIC_API_KEY",
        "HAPEX_LLM_MODEL", "HAPEX_OUTBOUND_CA_BUNDLE", *RunLimits.VARIABLES, *SMTP_VARIABLES,
        "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS", "HAPEX_TEST_MODE", "WORKER_CONCURRENCY", "WORKER_GRACE_SECONDS",
        "WORKER_NICE",
        "INTAKE_PUBLIC_URL", "AGENT_PASSWORD_HASH_PROFILE", *TransportSettings.VARIABLES,
    )

    # Read (and so validated) by the API too, but used by the workers only.
    WORKER_ONLY: ClassVar[tuple[str, ...]] = ("WORKER_CONCURRENCY", "WORKER_GRACE_SECONDS", "WORKER_NICE")

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """Every variable the agent and its workers read; from_env may read no other."""
        return cls.OWN_VARIABLES + provider_variables(PROVIDERS, secrets=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig:
        env = Environment(environ, declared=cls.variables())
        service_token = env.secret_token("AGENT_SERVICE_TOKEN")
        previous = env.secret_token("AGENT_SERVICE_TOKEN_PREVIOUS", required=False)
        admin_token = env.secret_token("AGENT_ADMIN_TOKEN")
        assert service_token is not None and admin_token is not None
        if admin_token == service_token or (previous is not None and admin_token == previous):
            raise ConfigError("AGENT_ADMIN_TOKEN", "must differ from AGENT_SERVICE_TOKEN")
        key, retired = _credential_keys(env)
        providers = resolve_catalog(env)
        # The agent is told where clients reach Hapex only to refuse a local provider in a public deployment.
        intake_public_url = env.https_url("INTAKE_PUBLIC_URL", required=False)
        refuse_loopback_providers(providers, intake_public_url, env)
        llm_key = env.get("ANTHROPIC_API_KEY")
        allow_loopback = env.boolean("HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS", False)
        test_mode = env.boolean("HAPEX_TEST_MODE", False)
        if allow_loopback and not test_mode:
            # Webhook steps reaching 127.0.0.1 would let a client's automation call the host's own services.
            raise ConfigError("HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS", "may be set only when HAPEX_TEST_MODE=1")
        profile = env.get("AGENT_PASSWORD_HASH_PROFILE", "owasp") or "owasp"
        if profile not in PASSWORD_HASH_PROFILES or (profile == "test" and not test_mode):
            raise ConfigError("AGENT_PASSWORD_HASH_PROFILE", "must be owasp (or test, when HAPEX_TEST_MODE=1)")
        return cls(
            database_url=env.database_url("AGENT_DATABASE_URL"),
            service_token=service_token,
            service_token_previous=previous,
            admin_token=admin_token,
            credential_encryption_key=key,
            credential_encryption_keys_retired=retired,
            pool=PoolSettings.from_env(env, "AGENT"),
            transport=TransportSettings.from_env(env),
            log_level=env.get("LOG_LEVEL", "INFO") or "INFO",
            log_format=log_format(env),
            providers=providers,
            oauth_clients=oauth_clients(env, providers),
            llm_api_key=Secret(llm_key) if llm_key else None,
            llm_model=llm_model(env),
            outbound_ca_bundle=env.get("HAPEX_OUTBOUND_CA_BUNDLE"),
            limits=RunLimits.from_env(env),
            smtp=smtp_settings(env),
            allow_loopback_webhooks=allow_loopback,
            worker_concurrency=env.integer("WORKER_CONCURRENCY", 4, minimum=1, maximum=256),
            worker_grace_seconds=float(env.integer("WORKER_GRACE_SECONDS", 45, minimum=1, maximum=3600)),
            worker_nice=env.integer("WORKER_NICE", 10, minimum=0, maximum=19),
            intake_public_url=intake_public_url.rstrip("/") if intake_public_url else None,
            password_hash_profile=profile,
        )


@dataclass(frozen=True)
class CredentialKeysConfig:
    """What `hapex credentials rotate` needs of the agent's settings: its database and the keys."""

    database_url: str = field(repr=False)
    credential_encryption_key: Secret
    credential_encryption_keys_retired: Secret | None

    VARIABLES: ClassVar[tuple[str, ...]] = ("AGENT_DATABASE_URL", *KEY_VARIABLES)

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return cls.VARIABLES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CredentialKeysConfig:
        env = Environment(environ, declared=cls.variables())
        key, retired = _credential_keys(env)
        return cls(database_url=env.database_url("AGENT_DATABASE_URL"), credential_encryption_key=key,
                   credential_encryption_keys_retired=retired)


@dataclass(frozen=True)
class ReportsConfig:
    """What `hapex admin` needs: the agent's database, nothing secret of the agent's."""

    database_url: str = field(repr=False)

    VARIABLES: ClassVar[tuple[str, ...]] = ("AGENT_DATABASE_URL",)

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return cls.VARIABLES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReportsConfig:
        env = Environment(environ, declared=cls.variables())
        return cls(database_url=env.database_url("AGENT_DATABASE_URL"))
