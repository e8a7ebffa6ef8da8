"""The pages themselves: headers on every route, security.txt, the security and privacy pages."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from markupsafe import escape

from intake.accounts import throttle
from shared.catalog import CATALOG, Catalog
from tests.integration.conftest import BASE_URL, Visitor, build_intake_app

CSP_PARTS = ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]


def every_get_path(app) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<uuid:{name}>", str(uuid.uuid4())).replace(f"<path:{name}>", "hapex.css")
        paths.append(path)
    return sorted(paths)


def assert_security_headers(response, where: str) -> None:
    headers = response.headers
    assert headers.get("Strict-Transport-Security") == "max-age=31536000; includeSubDomains", where
    csp = [part.strip() for part in headers.get("Content-Security-Policy", "").split(";")]
    for part in CSP_PARTS:
        assert part in csp, (where, part)
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("strict-origin-when-cross-origin", "no-referrer"), where


def test_every_route_sends_the_security_headers_signed_out_and_signed_in(intake_app, signed_up):
    signed_in, _ = signed_up
    signed_out = Visitor(intake_app)
    paths = every_get_path(intake_app)
    assert len(paths) >= 15
    for path in paths:
        for visitor in (signed_out, signed_in):
            response = visitor.get(path)
            assert_security_headers(response, path)
    for path in ("/no-such-page", "/automations/not-a-uuid"):
        assert_security_headers(signed_in.get(path), path)
    assert_security_headers(signed_in.client.post("/logout", base_url=BASE_URL), "/logout forged")


def test_pages_seen_signed_in_are_never_stored_by_caches(intake_app, signed_up):
    visitor, _ = signed_up
    for path in every_get_path(intake_app):
        if path.startswith("/static/") or path == "/healthz":
            continue
        response = visitor.get(path)
        assert response.headers.get("Cache-Control") == "no-store", path
        assert "Cookie" in response.headers.get("Vary", ""), path


def test_security_txt_follows_rfc_9116(database, intake_db, agent_transport):
    # Policy and Canonical come from INTAKE_PUBLIC_URL (tests/integration/test_proxy_trust.py).
    visitor = Visitor(build_intake_app(database, intake_db, agent_transport, public_url=BASE_URL))
    before = datetime.now(UTC)
    response = visitor.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    fields = dict(line.split(": ", 1) for line in response.get_data(as_text=True).splitlines())
    assert fields["Contact"] == "mailto:security@hapex.ai"
    expires = datetime.strptime(fields["Expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before < expires < before + timedelta(days=365)
    assert fields["Policy"] == f"{BASE_URL}/security"
    assert fields["Canonical"] == f"{BASE_URL}/.well-known/security.txt"
    assert visitor.get(fields["Policy"].removeprefix(BASE_URL)).status_code == 200


def test_the_security_page_states_the_settings_the_app_runs_with(database, intake_db, agent_transport):
    app = build_intake_app(database, intake_db, agent_transport, password_hash_profile="owasp",
                           session_idle_minutes=17, session_absolute_hours=7)
    text = re.sub(r"\s+", " ", Visitor(app).get("/security").get_data(as_text=True))
    assert "argon2id using 64 MiB of memory, 3 passes and 4 lanes, above the OWASP minimum." in text
    assert "after 17 minutes without activity and after 7 hours in any case" in text
    assert f"After {throttle.ACCOUNT_LIMIT} failed sign-ins to one account within 15 minutes" in text
    assert f"after {throttle.ADDRESS_LIMIT} failures from one network address" in text
    assert "256 random bits" in text and "__Host-hapex_session" in text


def test_the_data_and_privacy_page_lists_every_scope_in_the_catalog(visitor):
    html = visitor.get("/data-and-privacy").get_data(as_text=True)
    items = re.findall(r"<li>(.*?)</li>", html, re.S)
    assert CATALOG.providers
    for provider in CATALOG.providers:
        assert f">{escape(provider.name)}</h3>" in html
        for scope in provider.scopes:
            (item,) = [i for i in items if f"<code>{scope.name}</code>" in i]
            assert f">{scope.access}<" in item and str(escape(scope.purpose)) in item, scope.name
            for capability in CATALOG.capabilities_using(provider.key, scope.name):
                assert str(escape(capability.summary)) in item, (scope.name, capability.key)
    assert "does not connect to any provider yet" not in html


def test_with_an_empty_catalog_the_privacy_page_says_hapex_asks_for_nothing(
    database, intake_db, agent_transport
):
    app = build_intake_app(database, intake_db, agent_transport)
    app.extensions["hapex_catalog"] = Catalog()
    text = Visitor(app).get("/data-and-privacy").get_data(as_text=True)
    assert "Hapex does not connect to any provider yet" in text


def test_an_internal_error_page_says_nothing_of_the_error(intake_app, visitor):
    canary = "canary-" + uuid.uuid4().hex

    @intake_app.get("/boom")
    def boom():
        raise RuntimeError(canary)

    from intake import auth
    auth_open = auth.OPEN_ENDPOINTS
    auth.OPEN_ENDPOINTS = auth_open | {"boom"}
    try:
        response = visitor.get("/boom")
    finally:
        auth.OPEN_ENDPOINTS = auth_open
    assert response.status_code == 500
    assert canary not in response.get_data(as_text=True)
    assert "Something went wrong on our side." in response.get_data(as_text=True)
    assert_security_headers(response, "/boom")


EXTERNAL = re.compile(r'(?:src|href|action|srcset|poster|data)\s*=\s*"(?!/|#|mailto:)([^"]*)"', re.I)


def test_no_page_refers_to_another_origin(intake_app, signed_up):
    signed_in, _ = signed_up
    for visitor in (Visitor(intake_app), signed_in):
        for path in every_get_path(intake_app):
            response = visitor.get(path)
            if not response.content_type.startswith("text/html"):
                continue
            html = response.get_data(as_text=True)
            assert EXTERNAL.findall(html) == [], path
            assert "@import" not in html and "url(http" not in html, path
    css = Visitor(intake_app).get("/static/hapex.css").get_data(as_text=True)
    assert "@import" not in css and "http" not in css


def test_without_secure_cookies_the_security_page_promises_neither_hsts_nor_the_host_prefix(
    database, intake_db, agent_transport
):
    app = build_intake_app(database, intake_db, agent_transport, secure_cookies=False)
    visitor = Visitor(app)
    response = visitor.get("/security")
    text = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert "Strict-Transport-Security" not in response.headers
    assert "(HSTS)" not in text and "__Host-" not in text
    assert "OWASP minimum" not in text and "a cheap setting this test installation uses" in text
    signup = visitor.signup("plain@example.com", "correct horse battery staple")
    cookie = next(c for c in signup.headers.getlist("Set-Cookie") if c.startswith("hapex_session="))
    assert "secure" not in cookie.lower()
    secure_text = re.sub(r"\s+", " ", Visitor(build_intake_app(database, intake_db, agent_transport))
                         .get("/security").get_data(as_text=True))
    assert "(HSTS)" in secure_text and "<code>__Host-</code> prefix" in secure_text


def test_oauth_pages_send_no_referrer(intake_app):
    @intake_app.get("/connections/oauth/probe")
    def probe():
        return "probe"

    response = Visitor(intake_app).get("/connections/oauth/probe")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert Visitor(intake_app).get("/security").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
