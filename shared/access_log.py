"""One log line per request: method, path without query string, status, duration."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

logger = logging.getLogger("hapex.access")


def logged_path(path: str, secret_prefixes: tuple[str, ...]) -> str:
    """The path as it may be logged: whatever follows a secret-bearing prefix is masked."""
    for prefix in secret_prefixes:
        if path.startswith(prefix):
            return prefix + "<secret>"
    return path


def install(app: Flask, *, secret_prefixes: tuple[str, ...] = ()) -> None:
    """Log each request; paths under `secret_prefixes` carry a secret and are masked, whatever
    the method, status or failure (the mask does not depend on routing having matched)."""

    @app.before_request
    def _start_timer() -> None:
        g.hapex_request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.get("hapex_request_started")
        duration = round((time.perf_counter() - started) * 1000, 2) if started else None
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": logged_path(request.path, secret_prefixes),
                "status_code": response.status_code,
                "duration_ms": duration,
            },
        )
        return response
