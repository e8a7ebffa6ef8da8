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
            }
        },
        "/v1/admin/overview": {
            "get": {
                "summary": "Counts across clients for the operator.",
                "security": [{"adminToken": []}],
                "responses": {"200": _json("Counts.", {"type": "object"}), **_errors(401, 403)},
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
