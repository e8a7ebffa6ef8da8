"""The one JSON error shape of Hapex's APIs: {"error": name, "message": sentence}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    """The request could not be completed."""

    status = 400
    name = "bad_request"

    def __init__(self, message: str | None = None, *, fields: dict[str, Any] | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.fields = fields
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.name, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        return body


class ValidationFailed(APIError):
    """Some fields are missing or invalid."""

    status = 400
    name = "validation_failed"


class NotFound(APIError):
    """Nothing was found at this address."""

    status = 404
    name = "not_found"


class Conflict(APIError):
    """The request conflicts with the current state."""

    status = 409
    name = "conflict"


def error_body(name: str, message: str) -> dict[str, str]:
    return {"error": name, "message": message}


def _http_error_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_json_errors(app: Flask) -> None:
    """Every error leaves as the JSON shape; a 500 never echoes exception text."""

    @app.errorhandler(APIError)
    def _api_error(exc: APIError) -> ResponseReturnValue:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        message = (exc.description or "").split("\n")[0] if status < 500 else "Internal error."
        response = jsonify(error_body(_http_error_name(exc), message))
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        logger.error("unhandled error", exc_info=exc)
        return jsonify(error_body("internal_error", "Something went wrong on our side.")), 500
