"""Headers on every response: HSTS, a strict CSP, no sniffing, no caching of private pages."""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "img-src 'self' data:",
    ]
)
# Every page is script-free but the passkey pages, which allow their one script by a nonce (allow_script).
NO_SCRIPT = "script-src 'none'"
# Pages whose URL or referrer could carry OAuth codes or state.
NO_REFERRER_PREFIXES = ("/connections/oauth",)


def allow_script() -> str:
    """A nonce for this response's one <script> (static/passkeys.js); only the page that asks gets one."""
    nonce: str = g.setdefault("script_nonce", secrets.token_urlsafe(18))
    return nonce


def install(app: Flask, *, hsts: bool) -> None:
    @app.after_request
    def add_headers(response: Response) -> Response:
        headers = response.headers
        if hsts:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        nonce = g.get("script_nonce")
        script = f"script-src 'nonce-{nonce}'" if nonce else NO_SCRIPT
        headers["Content-Security-Policy"] = f"{CONTENT_SECURITY_POLICY}; {script}"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.path.startswith(NO_REFERRER_PREFIXES):
            headers["Referrer-Policy"] = "no-referrer"
        else:
            headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if getattr(request, "hapex_authenticated", False) or response.headers.get("Set-Cookie"):
            headers["Cache-Control"] = "no-store"
        return response
