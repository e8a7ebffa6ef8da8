"""What the agent's API and workers share at run time, built once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from agent_service.capabilities import LLMSettings
from agent_service.connections.provider_oauth import OAuthClient, oauth_clients_from_env, outbound_verify
from agent_service.outbound_tls import outbound_session, tls_context
from agent_service.vault import Vault
from shared.catalog import PROVIDERS, Provider, get_provider
from shared.config import Environment
from shared.db import Database
from shared.secret import Secret


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

    @classmethod
    def from_env(cls, env: Environment) -> RunLimits:
        return cls(
            run_seconds=float(env.integer("HAPEX_RUN_TIME_LIMIT_SECONDS", 900, minimum=10, maximum=86400)),
            step_attempts=env.integer("HAPEX_STEP_MAX_ATTEMPTS", 4, minimum=1, maximum=10),
            backoff_base_seconds=env.integer("HAPEX_RETRY_BASE_MS", 1000, minimum=0, maximum=60000) / 1000,
            retention_days=env.integer("HAPEX_RUN_RETENTION_DAYS", 400, minimum=30, maximum=3650),
        )


@dataclass
class AgentRuntime:
    """The database, the vault and the outbound settings a step needs."""

    db: Database
    vault: Vault
    oauth_clients: dict[str, OAuthClient]
    llm: LLMSettings
    verify: str
    limits: RunLimits = field(default_factory=RunLimits)
    environ: Mapping[str, str] = field(default_factory=dict)

    sessions: dict[str, requests.Session] = field(default_factory=dict)

    def provider(self, key: str) -> Provider:
        return get_provider(key, self.environ)

    def http_session(self, provider_key: str) -> requests.Session:
        """One keep-alive session per provider per process: steps reuse TLS connections
        instead of a handshake per call, all verified with the bundle's one preloaded context.
        Shared by every client's steps, so it keeps no cookies. Thread-safe for this use."""
        session = self.sessions.get(provider_key)
        if session is None:
            session = self.sessions.setdefault(provider_key, outbound_session(self.verify))
        return session

    @classmethod
    def build(cls, db: Database, vault: Vault, environ: Mapping[str, str] | None = None) -> AgentRuntime:
        environ = dict(os.environ if environ is None else environ)
        env = Environment(environ)
        key = env.get("ANTHROPIC_API_KEY")
        llm = LLMSettings(
            api_key=Secret(key) if key else None,
            model=env.get("HAPEX_LLM_MODEL", "claude-sonnet-4-5") or "claude-sonnet-4-5",
            base_url=get_provider("anthropic", environ).api_base_url or "https://api.anthropic.com",
        )
        verify = outbound_verify(environ)
        tls_context(verify)  # loaded now: an unreadable bundle stops start-up, not the first step
        return cls(
            db=db,
            vault=vault,
            oauth_clients=oauth_clients_from_env(PROVIDERS, environ),
            llm=llm,
            verify=verify,
            limits=RunLimits.from_env(env),
            environ=environ,
        )
