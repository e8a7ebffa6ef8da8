"""What a disconnect may answer follows the revocation outcomes the provider code can return."""

from __future__ import annotations

from agent_service.connections.provider_oauth import RevocationOutcome
from agent_service.connections.schemas import ALREADY_DISCONNECTED, REVOCATIONS, DisconnectedSchema


def test_every_revocation_outcome_and_already_disconnected_is_an_answer_a_disconnect_may_give():
    assert REVOCATIONS == [*(outcome.value for outcome in RevocationOutcome), ALREADY_DISCONNECTED]
    schema = DisconnectedSchema()
    for revocation in REVOCATIONS:
        assert not schema.validate({"connection_id": "00000000-0000-4000-8000-000000000001",
                                    "revocation": revocation})
