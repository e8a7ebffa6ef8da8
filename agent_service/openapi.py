"""The agent API's OpenAPI document; a test checks it names every route the app serves."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

blueprint = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request.",
        401: "No bearer token.",
        403: "Wrong token for this route.",
        404: "Not found for this client.",
        503: "Database unreachable.",
    }
    return {
        str(code): {"description": text[code], "content": {"application/json": {"schema": _ERROR}}}
        for code in codes
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
ADMIN_PERIOD = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": description}
    for name, description in (
        ("since", "First day (UTC) of the period, ISO date; by default 29 days before until."),
        ("until", "Last day (UTC) of the period, ISO date, at most 366 days after since; by default today."),
    )
]

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Hapex agent service",
        "version": "1",
        "description": "Internal API called by the intake service over HTTPS.",
    },
    "security": [{"serviceToken": []}],
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Liveness and database reachability.",
                "security": [],
                "responses": {
                    "200": _json("Up.", {"type": "object"}),
                    **_errors(503),
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers and every stored credential's key id is held.",
                "security": [],
                "responses": {
                    "200": _json("Ready.", {"type": "object", "properties": {
                        "status": {"const": "ok"}, "database": {"const": "ok"}, "credential_keys": {"const": "ok"}}}),
                    "503": _json("Not ready; which check failed (key ids are in the log, not here).", {
                        "type": "object", "properties": {
                            "status": {"const": "unavailable"},
                            "database": {"type": "string", "enum": ["ok", "unreachable"]},
                            "credential_keys": {"type": "string", "enum": ["ok", "missing", "unchecked"]}}}),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": _json("OpenAPI 3.1", {"type": "object"}), **_errors(401, 403)},
            }
        },
        "/v1/clients/{client_id}/connections": {
            "get": {
                "summary": "A client's connections, metadata only.",
                "parameters": [CLIENT_ID],
                "responses": {
                    "200": _json(
                        "Connections.",
                        {
                            "type": "object",
                            "properties": {
                                "connections": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Connection"},
                                }
                            },
                        },
                    ),
                    **_errors(401, 403),
                },
            },
            "delete": {
                "summary": (
                    "Revoke every connection of a client before its account is deleted: "
                    "marks each revoked and deletes its stored credentials."
                ),
                "parameters": [CLIENT_ID],
                "responses": {
                    "200": _json(
                        "What was revoked and deleted.",
                        {
                            "type": "object",
                            "required": ["connections_revoked", "credentials_deleted"],
                            "properties": {
                                "connections_revoked": {"type": "integer", "minimum": 0},
                                "credentials_deleted": {"type": "integer", "minimum": 0},
                            },
                        },
                    ),
                    **_errors(401, 403),
                },
            },
        },
        "/v1/clients/{client_id}/connections/{connection_id}": {
            "get": {
                "summary": "One connection, metadata only.",
                "parameters": [
                    CLIENT_ID,
                    {"name": "connection_id", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}},
                ],
                "responses": {
                    "200": _json("The connection.", {"$ref": "#/components/schemas/Connection"}),
                    **_errors(401, 403, 404),
                },
            },
            "delete": {
                "summary": "Disconnect: revoke at the provider, delete the ciphertext, pause what needed it.",
                "parameters": [
                    CLIENT_ID,
                    {"name": "connection_id", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}},
                ],
                "responses": {
                    "200": _json("How the provider took the revocation.", {
                        "type": "object",
                        "properties": {"revocation": {"type": "string", "enum": [
                            "revoked", "already_invalid", "retry_later", "unsupported", "already_disconnected"]}},
                    }),
                    **_errors(401, 403, 404),
                },
            },
        },
        "/v1/clients/{client_id}/connections/oauth": {
            "post": {
                "summary": "Exchange an authorization code (with its PKCE verifier) and store the tokens encrypted.",
                "parameters": [CLIENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["provider", "code", "code_verifier", "redirect_uri", "requested_scopes"],
                    "properties": {
                        "provider": {"type": "string"},
                        "code": {"type": "string"},
                        "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
                        "redirect_uri": {"type": "string", "format": "uri"},
                        "requested_scopes": {"type": "array", "items": {"type": "string"}},
                        "connection_id": {"type": ["string", "null"], "format": "uuid"},
                    },
                }}}},
                "responses": {
                    "201": _json("The connection, and any requested scope the provider did not grant.", {
                        "type": "object",
                        "properties": {
                            "connection": {"$ref": "#/components/schemas/Connection"},
                            "missing_scopes": {"type": "array", "items": {"type": "string"}},
                        },
                    }),
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
        "/v1/clients/{client_id}/connections/api-key": {
            "post": {
                "summary": "Store an API key encrypted; only its last four characters are kept readable.",
                "parameters": [CLIENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["provider", "api_key"],
                    "properties": {"provider": {"type": "string"}, "api_key": {"type": "string"},
                                   "label": {"type": "string"}},
                }}}},
                "responses": {
                    "201": _json("The connection.", {"type": "object"}),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/clients/{client_id}/automations/{automation_id}/runs": {
            "post": {
                "summary": "Start a run of the automation now.",
                "description": (
                    "No body (or trigger manual) is the client pressing Run now; trigger webhook is a call "
                    "to the automation's webhook URL, which needs the automation enabled. Over this month's "
                    "budget a webhook run is recorded as cancelled (202, status cancelled)."
                ),
                "parameters": [
                    CLIENT_ID,
                    {"name": "automation_id", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}},
                ],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"trigger": {"type": "string", "enum": ["manual", "webhook"],
                                               "default": "manual"}},
                    "additionalProperties": False,
                }}}},
                "responses": {
                    "202": _json("The queued run.", {"type": "object", "properties": {
                        "run_id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["queued", "cancelled"]}}}),
                    "409": {"description": "Paused, not enabled, or over this month's budget.",
                            "content": {"application/json": {"schema": _ERROR}}},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/clients/{client_id}/runs/{run_id}/outputs": {
            "get": {
                "summary": "The run's stored step outputs, decrypted for its client.",
                "description": (
                    "Only automations whose client turned store_outputs on have any. Each output is sealed "
                    "with AES-256-GCM under the credential keys and bound to its client, run and step; one "
                    "that fails to decrypt is listed with output null and unreadable true. Answered with "
                    "Cache-Control: no-store."
                ),
                "parameters": [
                    CLIENT_ID,
                    {"name": "run_id", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}},
                ],
                "responses": {
                    "200": _json("The stored outputs, in step order.", {"type": "object", "properties": {
                        "run_id": {"type": "string", "format": "uuid"},
                        "outputs": {"type": "array", "items": {"type": "object", "properties": {
                            "step_index": {"type": "integer"},
                            "capability": {"type": "string"},
                            "output": {"type": ["object", "null"]},
                            "unreadable": {"type": "boolean"},
                        }}}}}),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/clients/{client_id}/outputs": {
            "get": {
                "summary": "Every stored step output of the client, decrypted, a page at a time (for its data export).",
                "description": "Ordered by run, then step. Pass a page's next as after_run and after_step for the "
                               "following page; next is null on the last. Answered with Cache-Control: no-store.",
                "parameters": [
                    CLIENT_ID,
                    {"name": "after_run", "in": "query", "required": False,
                     "schema": {"type": "string", "format": "uuid"}},
                    {"name": "after_step", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
                ],
                "responses": {
                    "200": _json("One page of stored outputs.", {"type": "object", "properties": {
                        "outputs": {"type": "array", "items": {"type": "object", "properties": {
                            "run_id": {"type": "string", "format": "uuid"},
                            "step_index": {"type": "integer"},
                            "capability": {"type": "string"},
                            "output": {"type": ["object", "null"]},
                            "unreadable": {"type": "boolean"},
                        }}},
                        "next": {"type": ["object", "null"], "properties": {
                            "after_run": {"type": "string", "format": "uuid"},
                            "after_step": {"type": "integer"}}}}}),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/clients/{client_id}/chat": {
            "get": {
                "summary": "Whether the build chat can answer this client: configured, and budget left this month.",
                "parameters": [CLIENT_ID],
                "responses": {
                    "200": _json("The chat's state for this client.", {"type": "object", "properties": {
                        "available": {"type": "boolean"},
                        "over_budget": {"type": "boolean"},
                        "prompt_version": {"type": "string"},
                    }}),
                    **_errors(401, 403),
                },
            }
        },
        "/v1/clients/{client_id}/chat/{draft_id}/replies": {
            "post": {
                "summary": "The build chat's next answer to a draft's stored conversation: a proposal or a question.",
                "description": (
                    "Reads the draft's messages from chat_messages itself (no body needed) and asks Claude, "
                    "constrained to the catalog. A proposal is validated like a hand-built automation and its "
                    "scopes come from the catalog; nothing is saved and nothing runs. Every model call is a "
                    "cost event; over this month's budget no call is made."
                ),
                "parameters": [
                    CLIENT_ID,
                    {"name": "draft_id", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}},
                ],
                "responses": {
                    "200": _json("A validated proposal, or a question for the client.", {"oneOf": [
                        {"type": "object", "required": ["kind", "automation", "scopes", "summary_in_plain_words"],
                         "properties": {
                             "kind": {"const": "proposal"},
                             "automation": {"type": "object"},
                             "scopes": {"type": "object", "additionalProperties": {"type": "array", "items": {
                                 "type": "object", "properties": {
                                     "scope": {"type": "string"},
                                     "access": {"type": "string", "enum": ["read", "write"]},
                                     "purpose": {"type": "string"}}}}},
                             "providers": {"type": "array", "items": {"type": "string"}},
                             "summary_in_plain_words": {"type": "string"},
                             "message": {"type": "string"},
                             "prompt_version": {"type": "string"},
                         }},
                        {"type": "object", "required": ["kind", "text"], "properties": {
                            "kind": {"const": "question"}, "text": {"type": "string"},
                            "prompt_version": {"type": "string"}}},
                    ]}),
                    "409": {"description": "Over this month's budget (budget_exhausted), or nothing to answer.",
                            "content": {"application/json": {"schema": _ERROR}}},
                    "502": {"description": "Claude answered with an error (model_error) or not in time "
                                           "(model_timeout).",
                            "content": {"application/json": {"schema": _ERROR}}},
                    "503": {"description": "No ANTHROPIC_API_KEY on this deployment (chat_unavailable).",
                            "content": {"application/json": {"schema": _ERROR}}},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/admin/overview": {
            "get": {
                "summary": "Counts across clients for the operator.",
                "security": [{"adminToken": []}],
                "responses": {"200": _json("Counts.", {"type": "object"}), **_errors(401, 403)},
            }
        },
        "/v1/admin/clients": {
            "get": {
                "summary": "Every client with its runs, failed runs, failure rate and cost over a period.",
                "security": [{"adminToken": []}],
                "parameters": ADMIN_PERIOD,
                "responses": {
                    "200": _json("Per client: ids, name and figures; no email, no content.", {
                        "type": "object",
                        "properties": {
                            "since": {"type": "string", "format": "date"},
                            "until": {"type": "string", "format": "date"},
                            "clients": {"type": "array", "items": {"type": "object", "properties": {
                                "client_id": {"type": "string", "format": "uuid"},
                                "name": {"type": "string"},
                                "runs": {"type": "integer"},
                                "failed_runs": {"type": "integer"},
                                "failure_rate": {"type": ["number", "null"]},
                                "cost_microusd": {"type": "integer"},
                            }}},
                        },
                    }),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/admin/connections/needs-reauth": {
            "get": {
                "summary": "Connections waiting for their client to reconnect them, longest waiting first.",
                "security": [{"adminToken": []}],
                "responses": {
                    "200": _json("Connections: ids, provider, reason, since when, health failure count.", {
                        "type": "object",
                        "properties": {"connections": {"type": "array", "items": {"type": "object"}}},
                    }),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/admin/automations/failing": {
            "get": {
                "summary": "Automations with failed runs over a period, or paused; ids, counts and error classes.",
                "security": [{"adminToken": []}],
                "parameters": ADMIN_PERIOD,
                "responses": {
                    "200": _json("Automations, most failures first.", {
                        "type": "object",
                        "properties": {
                            "since": {"type": "string", "format": "date"},
                            "until": {"type": "string", "format": "date"},
                            "automations": {"type": "array", "items": {"type": "object"}},
                        },
                    }),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/admin/queue": {
            "get": {
                "summary": "Job queue depth by queue and status, and each worker's last heartbeat.",
                "security": [{"adminToken": []}],
                "responses": {
                    "200": _json("Jobs and workers.", {
                        "type": "object",
                        "properties": {
                            "jobs": {"type": "array", "items": {"type": "object", "properties": {
                                "queue_name": {"type": "string"}, "status": {"type": "string"},
                                "jobs": {"type": "integer"},
                                "oldest_waiting_since": {"type": ["string", "null"]}}}},
                            "workers": {"type": "array", "items": {"type": "object", "properties": {
                                "worker_id": {"type": "integer"}, "last_heartbeat": {"type": "string"},
                                "seconds_since_heartbeat": {"type": "integer"},
                                "jobs_running": {"type": "integer"}, "stale": {"type": "boolean"}}}},
                        },
                    }),
                    **_errors(400, 401, 403),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "serviceToken": {"type": "http", "scheme": "bearer", "description": "AGENT_SERVICE_TOKEN"},
            "adminToken": {"type": "http", "scheme": "bearer", "description": "AGENT_ADMIN_TOKEN"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object"},
                },
            },
            "Connection": {
                "type": "object",
                "properties": {
                    "connection_id": {"type": "string", "format": "uuid"},
                    "provider": {"type": "string"},
                    "auth_kind": {"type": "string", "enum": ["oauth2", "api_key"]},
                    "status": {"type": "string", "enum": ["pending", "active", "needs_reauth", "revoked"]},
                    "scopes_granted": {"type": "array", "items": {"type": "string"}},
                    "secret_hint": {"type": ["string", "null"]},
                },
            },
        },
    },
}


@blueprint.get("/v1/openapi.json")
def openapi_document() -> ResponseReturnValue:
    return jsonify(DOCUMENT)
