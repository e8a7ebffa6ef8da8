"""The origin and RP id passkeys are verified against come from INTAKE_PUBLIC_URL alone."""

from __future__ import annotations

import pytest

from agent_service.config import AgentConfig
from agent_service.passkeys.views import PasskeysUnavailable, RelyingParty, user_handle
from tests.unit.test_config import agent_env


@pytest.mark.parametrize(("public_url", "rp_id", "origin"), [
    ("https://app.example.com", "app.example.com", "https://app.example.com"),
    ("https://app.example.com/", "app.example.com", "https://app.example.com"),
    ("https://localhost:8443", "localhost", "https://localhost:8443"),
])
def test_the_relying_party_is_the_configured_intake_origin(public_url, rp_id, origin):
    config = AgentConfig.from_env(agent_env(INTAKE_PUBLIC_URL=public_url))
    assert RelyingParty.of(config) == RelyingParty(rp_id=rp_id, origin=origin)


def test_without_a_configured_origin_there_is_no_relying_party():
    with pytest.raises(PasskeysUnavailable):
        RelyingParty.of(AgentConfig.from_env(agent_env(INTAKE_PUBLIC_URL=None)))


def test_a_user_handle_names_the_tenant_and_user_and_nothing_personal():
    import uuid

    client_id, user_id = uuid.uuid4(), uuid.uuid4()
    handle = user_handle(client_id, user_id)
    assert len(handle) == 32 and handle == client_id.bytes + user_id.bytes
