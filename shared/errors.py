"""Hapex's domain errors and the one JSON error shape of its APIs: {"error": name, "message": sentence}.

A domain error is a subclass of HapexError that sets `name` (stable, what callers branch on),
`status` (the HTTP status it answers with), `message` (a sentence safe to show the client) and,
for a brief condition worth retrying, `retry_after_seconds` (sent as Retry-After), and nothing
more. An instance may carry a more precise message, and a validation failure its `fields`. A
status of 500 means "our fault": such an error never reaches the wire as itself; any other
status (503 "briefly unavailable" included) answers with its name and message.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class HapexError(Exception):
    """The base every domain error sets its name, status and safe message on."""

    name: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    message: str = "Something went wrong on our side."
    retry_after_seconds: ClassVar[int | None] = None

    def __init__(self, message: str | None = None, *, fields: dict[str, Any] | None = None) -> None:
        if message is not None:
            self.message = message
        self.fields = fields
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.name, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        return body


class ValidationFailed(HapexError):
    name = "validation_failed"
    status = 400
    message = "Some fields are missing or invalid."


class NotFound(HapexError):
    name = "not_found"
    status = 404
    message = "Nothing was found at this address."


def error_body(name: str, message: str) -> dict[str, str]:
    return {"error": name, "message": message}


def _http_error_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def _internal_error(exc: Exception) -> ResponseReturnValue:
    logger.error("unhandled error", exc_info=exc)
    return jsonify(error_body(HapexError.name, HapexError.message)), 500


def register_json_errors(app: Flask) -> None:
    """Every error leaves as the JSON shape; a 500 never echoes exception text."""

    @app.errorhandler(HapexError)
    def _domain_error(exc: HapexError) -> ResponseReturnValue:
        if exc.status == 500:
            return _internal_error(exc)
        response = jsonify(exc.body())
        if exc.retry_after_seconds is not None:
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response, exc.status

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
        return _internal_error(exc)
