"""What each JSON view of the agent takes and gives, declared once on the view.

`@contract(...)` loads the request through its schema (a JSON body or the query string) and
passes it as `data=`, dumps what the view returns through the response schema, and records
both, with the refusals the view may answer, for the OpenAPI document (agent_service.openapi):
the validation at run time and the published contract are the same schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response, jsonify, request
from marshmallow import Schema, ValidationError

from shared.errors import HapexError, ValidationFailed

View = TypeVar("View", bound=Callable[..., Any])


class BodyNotAnObject(ValidationFailed):
    message = "The body must be a JSON object."


@dataclass(frozen=True)
class Contract:
    """One view's schemas, its success status and headers, and every refusal it may answer."""

    response: type[Schema]
    status: int = 200
    body: type[Schema] | None = None
    body_optional: bool = False
    query: type[Schema] | None = None
    refusals: tuple[type[HapexError], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    # Other answers that are not refusals, by status: (description, schema), as /readyz's 503.
    also: Mapping[int, tuple[str, type[Schema]]] = field(default_factory=dict)


def _loaded(schema: Schema, values: Any) -> Any:
    try:
        return schema.load(values)
    except ValidationError as exc:
        raise ValidationFailed(fields=exc.normalized_messages()) from None


def _body(contract: Contract) -> Any:
    assert contract.body is not None
    if contract.body_optional and not request.get_data(cache=True):
        return _loaded(contract.body(), {})
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BodyNotAnObject()
    return _loaded(contract.body(), body)


def contract(response: type[Schema], *, status: int = 200, body: type[Schema] | None = None,
             body_optional: bool = False, query: type[Schema] | None = None,
             refusals: tuple[type[HapexError], ...] = (), headers: Mapping[str, str] | None = None,
             also: Mapping[int, tuple[str, type[Schema]]] | None = None) -> Callable[[View], View]:
    """Declare a view's contract; the view returns its data, or (data, status) for an `also` status."""
    declared = Contract(response, status, body, body_optional, query, refusals, dict(headers or {}),
                        dict(also or {}))
    if body is not None and query is not None:
        raise ValueError("a view takes a body or a query string, not both")

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def answer(**kwargs: Any) -> Response:
            if body is not None:
                kwargs["data"] = _body(declared)
            elif query is not None:
                loaded = _loaded(query(), request.args.to_dict())
                if query._declared_fields:  # a schema of no fields only refuses arguments
                    kwargs["data"] = loaded
            result = view(**kwargs)
            answered, schema = declared.status, declared.response
            if isinstance(result, tuple):
                result, answered = result
                schema = declared.also[answered][1]
            response = jsonify(schema().dump(result))
            response.status_code = answered
            response.headers.update(declared.headers)
            return response

        answer.contract = declared  # type: ignore[attr-defined]  # read back by contract_of
        return answer  # type: ignore[return-value]  # the wrapper stands in for the view

    return decorate


def contract_of(view: Callable[..., Any]) -> Contract | None:
    return getattr(view, "contract", None)
