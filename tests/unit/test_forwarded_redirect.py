"""Proxy mode's 308 to INTAKE_PUBLIC_URL for a plain-HTTP GET: always to the configured origin, for any path
a client can send, never a 500 and never a header of the client's making."""

from __future__ import annotations

import pytest
from flask import Flask

from shared import forwarded

ORIGIN = "https://hapex.example"


@pytest.fixture
def client():
    app = Flask("proxy-mode")
    forwarded.install(app, trusted_proxy_count=1, tls_by_proxy=True, https_origin=ORIGIN)

    @app.get("/<path:anything>")
    def anything(anything: str) -> str:
        return "served"

    return app.test_client()


@pytest.mark.parametrize("path", ["/a%0d%0aSet-Cookie:%20stolen=1", "/a%0aX-Injected:%201", "/caf%C3%A9/menu",
                                  "/%40evil.example/", "/a?next=%0d%0aX:1"])
def test_a_plain_http_get_is_sent_to_the_configured_origin_whatever_its_path(client, path):
    response = client.get(path, headers={"X-Forwarded-Proto": "http"})
    assert response.status_code == 308
    location = response.headers["Location"]
    assert location.startswith(ORIGIN + "/")
    assert "\r" not in location and "\n" not in location
    assert "Set-Cookie" not in response.headers and "X-Injected" not in response.headers
