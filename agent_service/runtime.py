"""What the agent's API and workers share at run time, built once per process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import certifi
import requests

from agent_service.capabilities import LLMSettings
from agent_service.config import AgentConfig, RunLimits
from agent_service.connections.provider_oauth import OAuthClient
from agent_service.notifications.mailer import SMTPSettings
from agent_service.outbound_tls import outbound_session, tls_context
from agent_service.vault import Vault
from shared.catalog import UNCONFIGURED, Provider, ResolvedCatalog
from shared.db import Database

__all__ = ["AgentRuntime", "RunLimits"]


@dataclass
class AgentRuntime:
    """The database, the vault and the outbound settings a step needs."""

    db: Database
    vault: Vault
    oauth_clients: Mapping[str, OAuthClient]
    llm: LLMSettings
    verify: str
    limits: RunLimits = field(default_factory=RunLimits)
    providers: ResolvedCatalog = UNCONFIGURED
    smtp: SMTPSettings | None = None
    allow_loopback_webhooks: bool = False
    # Where account emails' links point (INTAKE_PUBLIC_URL as the agent reads it), never what a row says.
    intake_public_url: str | None = None

    sessions: dict[str, requests.Session] = field(default_factory=dict)

    def provider(self, key: str) -> Provider:
        return self.providers.provider(key)

    def http_session(self, provider_key: str) -> requests.Session:
        """One keep-alive session per provider per process: steps reuse TLS connections
        instead of a handshake per call, all verified with the bundle's one preloaded context.
        Shared by every client's steps, so it keeps no cookies. Thread-safe for this use."""
        session = self.sessions.get(provider_key)
        if session is None:
            session = self.sessions.setdefault(provider_key, outbound_session(self.verify))
        return session

    @classmethod
    def build(cls, db: Database, vault: Vault, config: AgentConfig) -> AgentRuntime:
        """The runtime of one agent process, from the configuration it read at start."""
        llm = LLMSettings(
            api_key=config.llm_api_key,
            model=config.llm_model,
            base_url=config.providers.provider("anthropic").api_base_url or "https://api.anthropic.com",
        )
        # CA bundle for calls to providers: HAPEX_OUTBOUND_CA_BUNDLE, else certifi's.
        verify = config.outbound_ca_bundle or certifi.where()
        tls_context(verify)  # loaded now: an unreadable bundle stops start-up, not the first step
        return cls(
            db=db,
            vault=vault,
            oauth_clients=config.oauth_clients,
            llm=llm,
            verify=verify,
            limits=config.limits,
            providers=config.providers,
            smtp=config.smtp,
            allow_loopback_webhooks=config.allow_loopback_webhooks,
            intake_public_url=config.intake_public_url,
        )
