"""The intake service's configuration. It has no field for CREDENTIAL_ENCRYPTION_KEY."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import Environment, PoolSettings
from shared.secret import Secret


@dataclass(frozen=True)
class IntakeConfig:
    """What the public web app needs; it can call the agent but never decrypt."""

    database_url: str = field(repr=False)
    session_secret: Secret
    agent_service_url: str
    agent_service_ca: str | None
    agent_service_token: Secret
    trusted_proxy_count: int = 0
    secure_cookies: bool = True
    pool: PoolSettings = PoolSettings()
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntakeConfig:
        env = Environment(environ)
        session_secret = env.secret_token("INTAKE_SESSION_SECRET")
        token = env.secret_token("AGENT_SERVICE_TOKEN")
        assert session_secret is not None and token is not None
        return cls(
            database_url=env.database_url("INTAKE_DATABASE_URL"),
            session_secret=session_secret,
            agent_service_url=env.https_url("AGENT_SERVICE_URL") or "",
            agent_service_ca=env.existing_file("AGENT_SERVICE_CA", required=False),
            agent_service_token=token,
            trusted_proxy_count=env.integer("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5),
            secure_cookies=env.boolean("INTAKE_SECURE_COOKIES", True),
            pool=PoolSettings.from_env(env, "INTAKE"),
            log_level=env.get("LOG_LEVEL", "INFO") or "INFO",
        )
