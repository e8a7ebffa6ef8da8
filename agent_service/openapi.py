"""The agent API's OpenAPI document, generated from the contracts its views declare.

Every route's request and response schemas, and the refusals it may answer, come from its
`@contract` (agent_service.contract): the same marshmallow schemas that load and dump at run
time, so the document cannot drift from what the service does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app
from marshmallow import Schema, fields

from agent_service.auth import (
    ADMIN_PREFIX,
    OPEN_ENDPOINTS,
    PROOF_HEADER,
    ClientProofRefused,
    ClientProofRequired,
    MissingToken,
    WrongToken,
    needs_client_proof,
)
from agent_service.contract import Contract, contract, contract_of
from shared.errors import HapexError, ValidationFailed
from shared.request_input import InputRefused

blueprint = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
_CONVERTERS = {"uuid": {"type": "string", "format": "uuid"}}
_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


class ErrorSchema(Schema):
    """The one error shape: a stable name, a sentence, and per-field messages for a validation failure."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class DocumentSchema(Schema):
    """An OpenAPI 3.1 document."""

    openapi = fields.String(required=True)
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict()
    security = fields.List(fields.Dict())


def _path(rule: str) -> str:
    return _ARGUMENT.sub(r"{\2}", rule)


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": _CONVERTERS.get(converter, {"type": "string"})}
            for converter, name in _ARGUMENT.findall(rule)]


def _json(schema: type[Schema]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _refusals(declared: Contract, *, open_route: bool, client_route: bool) -> dict[str, Any]:
    """Each status the view may refuse with, described by the names and sentences it answers."""
    refusals: list[type[HapexError]] = list(declared.refusals)
    if declared.body is not None or declared.query is not None:
        # InputRefused: what the door (shared.request_input) refuses before the view loads anything.
        refusals[:0] = [ValidationFailed, InputRefused]
    if not open_route:
        refusals += [MissingToken, WrongToken]
    if client_route:
        refusals += [ClientProofRequired, ClientProofRefused]
    by_status: dict[int, list[str]] = defaultdict(list)
    for refusal in refusals:
        line = f"{refusal.name}: {refusal.message}"
        if line not in by_status[refusal.status]:
            by_status[refusal.status].append(line)
    return {str(status): {"description": " ".join(lines), "content": _json(ErrorSchema)}
            for status, lines in sorted(by_status.items())}


def _operation(view: Any, declared: Contract, rule: str, endpoint: str) -> dict[str, Any]:
    summary, _, description = (view.__doc__ or "").strip().partition("\n")
    open_route = endpoint in OPEN_ENDPOINTS
    success: dict[str, Any] = {"description": summary.strip() or "Done.", "content": _json(declared.response)}
    if declared.headers:
        success["headers"] = {name: {"schema": {"type": "string", "const": value}}
                              for name, value in declared.headers.items()}
    responses: dict[str, Any] = {str(declared.status): success}
    responses |= {str(status): {"description": text, "content": _json(schema)}
                  for status, (text, schema) in declared.also.items()}
    client_route = needs_client_proof(endpoint)
    responses |= _refusals(declared, open_route=open_route, client_route=client_route)
    operation: dict[str, Any] = {"operationId": endpoint, "summary": summary.strip(), "responses": responses}
    if description.strip():
        operation["description"] = " ".join(description.split())
    if open_route:
        operation["security"] = []
    elif rule.startswith(ADMIN_PREFIX):
        operation["security"] = [{"adminToken": []}]
    elif client_route:
        operation["security"] = [{"serviceToken": [], "clientProof": []}]
    parameters: list[dict[str, Any]] = _path_parameters(rule)
    if declared.query is not None:
        parameters.append({"in": "query", "schema": declared.query})
    if parameters:
        operation["parameters"] = parameters
    if declared.body is not None:
        operation["requestBody"] = {"required": not declared.body_optional, "content": _json(declared.body)}
    return operation


def build_document(app: Flask) -> dict[str, Any]:
    """The document for every route the app serves; a route without a contract is an error."""
    spec = APISpec(
        title="Hapex agent service", version="1", openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": "Internal API called by the intake service over HTTPS."},
        security=[{"serviceToken": []}],
    )
    spec.components.security_scheme("serviceToken", {"type": "http", "scheme": "bearer",
                                                      "description": "AGENT_SERVICE_TOKEN"})
    spec.components.security_scheme("adminToken", {"type": "http", "scheme": "bearer",
                                                    "description": "AGENT_ADMIN_TOKEN, for /v1/admin/ only"})
    spec.components.security_scheme("clientProof", {
        "type": "apiKey", "in": "header", "name": PROOF_HEADER,
        "description": "The client's own proof, `session <secret>` (the session cookie the person's browser "
                       "just sent) or `webhook <secret>` (the secret of the webhook URL just called, for "
                       "starting that automation's run); checked against the stored hash."})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        declared = contract_of(view)
        if declared is None:
            raise RuntimeError(f"{rule.endpoint} declares no contract")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths[rule.rule][method.lower()] = _operation(view, declared, rule.rule, rule.endpoint)
    for rule_text, operations in paths.items():
        spec.path(path=_path(rule_text), operations=operations)
    return spec.to_dict()


@blueprint.get("/v1/openapi.json")
@contract(DocumentSchema)
def openapi_document() -> dict[str, Any]:
    """This document."""
    extensions = current_app.extensions
    if "hapex_openapi" not in extensions:
        extensions["hapex_openapi"] = build_document(current_app)
    return extensions["hapex_openapi"]  # type: ignore[no-any-return]  # Flask's app state holds Any
