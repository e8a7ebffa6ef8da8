"""The agent API answers what its OpenAPI document says, checked by schemathesis on a real database.

Each operation is called with generated ids (an unknown client, automation, run, draft,
connection), with the ids of a client that exists (and that client's live session as its proof,
which a generated client id is refused for), with that client and unknown ids of its things, and
with invalid bodies and query strings for that client. Every answer must be no 500 (nor an
undocumented 5xx), a documented status, and conform to its schema.
No provider is called: the test agent has no OAuth client configured (the code exchange is
refused as provider_not_configured before any call) nor an Anthropic key (the chat answers
chat_unavailable), and `responses` fails any outbound request that slips through.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import responses
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.agent_api import ADMIN, SERVICE, acting_for, bearer
from tests.factories import make_automation, make_client, make_connection


def no_internal_error(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
                      ) -> bool | None:
    """No 500: the 502 and 503 the document names (Claude failed, chat or provider unavailable) are answers."""
    if response.status_code == 500 or response.status_code > 503:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}")
    return None


CHECKS = [no_internal_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 25  # per operation and pass: about a thousand calls, some seconds on a busy two-core machine


def _known_ids(intake_db, agent_db) -> tuple[dict[str, str], dict[str, str]]:
    """The ids of a client that exists, and the headers of a call for it (its live session as the proof)."""
    client_id = make_client(intake_db)
    return acting_for(intake_db, client_id), {
        "client_id": str(client_id),
        "automation_id": str(make_automation(intake_db, client_id)),
        "connection_id": str(make_connection(agent_db, client_id, provider="google")),
        "run_id": str(uuid.uuid4()),
        "draft_id": str(uuid.uuid4()),
    }


def test_every_operation_answers_as_its_openapi_document_says(agent_app, intake_db, agent_db):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", agent_app, headers=bearer(SERVICE))
    as_known, known = _known_ids(intake_db, agent_db)
    statuses: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    served = {f"{method} {rule.rule.replace('<uuid:', '{').replace('>', '}')}"
              for rule in agent_app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    # schemathesis leaves out the document's own route, which from_wsgi has just loaded.
    assert {operation.label for operation in operations} == served - {"GET /v1/openapi.json"}

    for operation in operations:
        # The known client's proof goes with every call: generated client ids are refused for want of theirs.
        headers = bearer(ADMIN) if operation.path.startswith("/v1/admin/") else as_known
        ids = {name: known[name] for name in known if "{" + name + "}" in operation.path}
        passes = [operation.as_strategy(), operation.as_strategy(path_parameters=ids)]
        if "client_id" in ids and len(ids) > 1:  # the known client, with unknown ids of its things
            passes.append(operation.as_strategy(path_parameters={"client_id": ids["client_id"]}))
        if operation.body or operation.query:
            passes.append(operation.as_strategy(schemathesis.GenerationMode.NEGATIVE, path_parameters=ids))
        for strategy in passes:
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def answers_as_documented(case: schemathesis.Case) -> None:
                with responses.RequestsMock(assert_all_requests_are_fired=False):
                    response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses[(operation.label, response.status_code)] += 1

            answers_as_documented()

    examples = sum(statuses.values())
    print(f"schemathesis: {examples} examples over {len(operations)} operations in "
          f"{time.monotonic() - started:.1f} s")
    assert ("GET /v1/clients/{client_id}/connections/{connection_id}", 404) in statuses
    assert ("POST /v1/clients/{client_id}/connections/api-key", 403) in statuses  # a client with no proof given
    assert ("POST /v1/clients/{client_id}/connections/api-key", 201) in statuses
    assert ("POST /v1/clients/{client_id}/automations/{automation_id}/runs", 202) in statuses
    assert any(status == 400 for _, status in statuses)
