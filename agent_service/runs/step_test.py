""""Test this step": one read-only step run once against the client's real connection, its output
answered to the client and never stored or logged.

Only steps that read through a client's connection are tested: a step that writes (sends,
appends, creates) is never run by a test, and a Claude step (billed per call) is not either;
the builder shows what those would be sent instead. The credential is opened as a run's step
opens it, refreshed first when due (one refresh at a time per connection), and recorded in the
access audit with the reason step_test.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from marshmallow import ValidationError

from agent_service.capabilities import ProviderHTTP, StepContext, StepFailed
from agent_service.capabilities.registry import run_capability
from agent_service.connections import repository as connections
from agent_service.connections.tokens import ReconnectNeeded, ensure_access_token
from agent_service.runs.engine import StepError, connection_problem
from agent_service.runtime import AgentRuntime
from agent_service.vault import Accessor, CredentialKeyMissing, CredentialNotFound, CredentialUnreadable, Purpose
from shared.catalog import CAPABILITIES, PROVIDERS, AuthKind, Capability
from shared.db import tenant_transaction
from shared.errors import HapexError

logger = logging.getLogger(__name__)
TESTER = "agent"


class StepTestRefused(HapexError):
    name = "step_test_refused"
    status = 409
    message = "This step cannot be tested."


class StepTestInputInvalid(HapexError):
    name = "step_test_input_invalid"
    status = 422
    message = "The step's input is not valid; correct it in the builder first."


class StepTestFailed(HapexError):
    name = "step_test_failed"
    status = 409
    message = "The step failed."


def testable(capability: Capability) -> bool:
    """Steps that only read, through a connection of the client's (not Hapex's own, billed model)."""
    return (not capability.side_effect and capability.access == "read"
            and PROVIDERS[capability.provider].auth_kind is not AuthKind.HAPEX_KEY)


def test_step(rt: AgentRuntime, *, client_id: uuid.UUID, capability_key: str, given: dict[str, Any]) -> dict[str, Any]:
    """The step's output for this input, from the client's real connection."""
    capability = CAPABILITIES.get(capability_key)
    if capability is None or not testable(capability):
        raise StepTestRefused("Only a step that reads through one of your connections can be tested; "
                              "a step that writes is shown, never run.")
    try:
        data = capability.input_schema().load(given)
    except ValidationError:
        raise StepTestInputInvalid() from None
    provider = rt.provider(capability.provider)
    with tenant_transaction(rt.db, client_id) as conn:
        connection = connections.connection_for_step(conn, provider=provider.key)
    problem: StepError | None = connection_problem(capability, provider, connection)
    if problem is not None or connection is None:
        raise StepTestRefused(problem.safe_message if problem else f"{provider.name} is not connected.")
    test_id = uuid.uuid4()
    http = ProviderHTTP(provider, verify=rt.verify, session=rt.http_session(provider.key))
    ctx = StepContext(client_id=client_id, run_id=test_id, step_index=0, http=http, llm=rt.llm,
                      idempotency_key=f"test:{test_id}", allow_loopback_webhooks=rt.allow_loopback_webhooks)
    connection_id = connection["connection_id"]
    purpose = Purpose.ACCESS_TOKEN if provider.auth_kind is AuthKind.OAUTH2 else Purpose.API_KEY
    try:
        if provider.auth_kind is AuthKind.OAUTH2:
            ensure_access_token(rt, client_id=client_id, connection_id=connection_id, provider=provider,
                                accessor=Accessor(TESTER, reason="token_refresh"))
        with rt.vault.open_for_step(client_id=client_id, connection_id=connection_id, purpose=purpose,
                                    accessor=Accessor(TESTER, reason="step_test")) as token:
            result = run_capability(capability.key, ctx, token, data)
    except StepFailed as exc:
        logger.info("step test failed", extra={"client_id": client_id, "error_class": exc.error_class})
        raise StepTestFailed(exc.safe_message) from None
    except ReconnectNeeded:
        raise StepTestFailed(f"{provider.name} no longer accepts Hapex's access; reconnect it.") from None
    except (CredentialUnreadable, CredentialNotFound, CredentialKeyMissing):
        raise StepTestFailed(f"{provider.name} cannot be used right now; reconnect it.") from None
    logger.info("step tested", extra={"client_id": client_id, "count": http.calls})
    return result.output
