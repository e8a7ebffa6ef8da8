"""The agent service's configuration, read once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent_service.vault.keys import parse_key, parse_key_list
from shared.config import ConfigError, Environment, PoolSettings
from shared.secret import Secret


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
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig:
        env = Environment(environ)
        service_token = env.secret_token("AGENT_SERVICE_TOKEN")
        previous = env.secret_token("AGENT_SERVICE_TOKEN_PREVIOUS", required=False)
        admin_token = env.secret_token("AGENT_ADMIN_TOKEN")
        assert service_token is not None and admin_token is not None
        if admin_token == service_token or (previous is not None and admin_token == previous):
            raise ConfigError("AGENT_ADMIN_TOKEN", "must differ from AGENT_SERVICE_TOKEN")
        key = env.require("CREDENTIAL_ENCRYPTION_KEY")
        parse_key("CREDENTIAL_ENCRYPTION_KEY", key)
        retired = env.get("CREDENTIAL_ENCRYPTION_KEYS_RETIRED")
        parse_key_list("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", retired)
        return cls(
            database_url=env.database_url("AGENT_DATABASE_URL"),
            service_token=service_token,
            service_token_previous=previous,
            admin_token=admin_token,
            credential_encryption_key=Secret(key),
            credential_encryption_keys_retired=Secret(retired) if retired else None,
            pool=PoolSettings.from_env(env, "AGENT"),
            log_level=env.get("LOG_LEVEL", "INFO") or "INFO",
        )
