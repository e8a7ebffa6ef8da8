"""The agent refuses to start, naming why, when its database cannot be reached."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from agent_service.vault import VaultStartupError
from agent_service.vault.startup import check_agent_can_start

KEY_1 = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_check_agent_can_start_fails_when_the_database_is_unreachable():
    from agent_service.config import AgentConfig

    config = AgentConfig.from_env({
        "AGENT_DATABASE_URL": "host=/nonexistent/socket-dir dbname=hapex user=hapex_agent connect_timeout=1",
        "AGENT_SERVICE_TOKEN": "service-token-" + uuid.uuid4().hex,
        "AGENT_ADMIN_TOKEN": "admin-token-" + uuid.uuid4().hex,
        "CREDENTIAL_ENCRYPTION_KEY": b64(KEY_1),
        "AGENT_DB_POOL_MIN": "1",
    })
    with pytest.raises(VaultStartupError, match="database is unavailable"):
        check_agent_can_start(config, timeout=1.0)
