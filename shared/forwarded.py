"""Requests through the proxies the operator declared, and HTTPS only when a balancer terminates TLS.

X-Forwarded-* headers count from TRUSTED_PROXY_COUNT hops and from nobody else (ProxyFix). With
TLS_TERMINATION=proxy the service itself receives plain HTTP from the platform's balancer, so a
request counts as HTTPS only when the balancer says it received it so (X-Forwarded-Proto); any other
is refused (a GET with a known public origin is sent there instead). Health checks are exempt:
balancers probe their targets directly, without the header.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Flask, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.errors import HapexError

logger = logging.getLogger(__name__)

# The balancer's own probes reach these directly over the private network.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# What stays as it is in a redirected path (RFC 3986 pchar and "/"); everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class HttpsRequired(HapexError):
    name = "https_required"
    status = 403
    message = "Hapex answers over HTTPS only: send the request again to its https:// address."


def install(app: Flask, *, trusted_proxy_count: int, tls_by_proxy: bool, https_origin: str | None = None) -> None:
    """Call before every other before_request: nothing else runs for a request that came in plain HTTP."""
    if trusted_proxy_count:
        n = trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]  # Flask's documented way to add middleware
    if not tls_by_proxy:
        return

    @app.before_request
    def refuse_plain_http() -> ResponseReturnValue | None:
        if request.scheme == "https" or request.path in PROBE_PATHS:
            return None
        logger.info("plain http refused", extra={"error": HttpsRequired.name})
        if https_origin and request.method in ("GET", "HEAD"):
            # The configured origin, never the request's Host: a forged header must not choose where to send.
            # The path as the client sent it, percent-encoded again: decoded, a %0d%0a in it could not be a header.
            target = https_origin.rstrip("/") + quote(request.path, safe=_PATH_SAFE)
            if request.query_string:
                target += "?" + request.query_string.decode("latin-1")
            return redirect(target, 308)
        raise HttpsRequired()

    @app.errorhandler(HttpsRequired)
    def https_required(exc: HttpsRequired) -> ResponseReturnValue:
        return jsonify(exc.body()), exc.status
