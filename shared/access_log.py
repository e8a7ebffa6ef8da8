"""One log line per request: method, path without query string, status, duration."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

logger = logging.getLogger("hapex.access")


def install(app: Flask) -> None:
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
                "path": request.path,
                "status_code": response.status_code,
                "duration_ms": duration,
            },
        )
        return response
