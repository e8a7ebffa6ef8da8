"""The outbound webhook: a signature the receiver can verify, and no way into private networks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
from uuid import uuid4

import certifi
import pytest
import responses

from agent_service.capabilities import webhook
from agent_service.capabilities.base import (
    LLMSettings,
    ProviderHTTP,
    ProviderRefused,
    ProviderTransient,
    StepContext,
    StepFailed,
)
from agent_service.capabilities.registry import run_capability
from agent_service.capabilities.webhook import AddressRefused
from shared.catalog import get_provider
from shared.secret import Secret

KEY = Secret("whsec-client-key-canary")
PUBLIC = ipaddress.ip_address("93.184.215.14")


def context(*, allow_loopback: bool = False) -> StepContext:
    return StepContext(client_id=uuid4(), run_id=uuid4(), step_index=3,
                       # A real bundle: the connect-time tests below reach the TLS layer.
                       http=ProviderHTTP(get_provider("webhook"), verify=certifi.where()),
                       llm=LLMSettings(api_key=Secret("sk-ant-test")), idempotency_key="run-7:step-3",
                       allow_loopback_webhooks=allow_loopback)


@pytest.fixture
def public_dns(monkeypatch):
    monkeypatch.setattr(webhook, "resolve", lambda host, port: [PUBLIC])


@responses.activate
def test_the_signature_verifies_with_the_clients_key_over_the_exact_body(public_dns):
    responses.post("https://hooks.example.com/hapex", status=202)
    ctx = context()
    payload = {"summary": "Ünïcode ok", "count": 3, "items": [{"a": 1}]}
    result = run_capability("webhook.post", ctx, KEY, {"url": "https://hooks.example.com/hapex", "payload": payload})
    request = responses.calls[0].request
    body = request.body
    expected = hmac.new(b"whsec-client-key-canary", body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hapex-Signature"] == f"sha256={expected}"
    assert request.headers["X-Hapex-Idempotency-Key"] == "run-7:step-3"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert json.loads(body) == payload
    assert result.output == {"status_code": 202} and result.counts == {"bytes": len(body)}
    assert ctx.http.calls == 1


@responses.activate
def test_a_tampered_body_does_not_verify(public_dns):
    responses.post("https://hooks.example.com/hapex")
    run_capability("webhook.post", context(), KEY, {"url": "https://hooks.example.com/hapex", "payload": {"a": 1}})
    request = responses.calls[0].request
    tampered = request.body.replace(b"1", b"2")
    forged = "sha256=" + hmac.new(b"whsec-client-key-canary", tampered, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(forged, request.headers["X-Hapex-Signature"])


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://127.9.9.9:8443/hook", "https://10.0.0.5/hook", "https://172.16.3.4/",
    "https://192.168.1.1/", "https://169.254.169.254/latest/meta-data/", "https://100.64.0.1/", "https://0.0.0.0/",
    "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://[fe80::1]/", "https://[fd00::1]/",
    "https://[64:ff9b::a00:1]/", "https://[2002:7f00:1::]/", "https://localhost/hook",
])
@responses.activate
def test_private_loopback_and_link_local_addresses_are_refused_before_any_call(url):
    with pytest.raises(AddressRefused):
        run_capability("webhook.post", context(), KEY, {"url": url, "payload": {}})
    assert len(responses.calls) == 0


@responses.activate
def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    monkeypatch.setattr(webhook, "resolve", lambda host, port: [PUBLIC, ipaddress.ip_address("10.0.0.8")])
    with pytest.raises(AddressRefused):
        run_capability("webhook.post", context(), KEY, {"url": "https://hooks.example.com/", "payload": {}})
    assert len(responses.calls) == 0


@responses.activate
def test_the_loopback_override_allows_loopback_and_nothing_else():
    responses.post("https://127.0.0.1:8443/hook", status=200)
    result = run_capability("webhook.post", context(allow_loopback=True), KEY,
                            {"url": "https://127.0.0.1:8443/hook", "payload": {"ok": True}})
    assert result.output == {"status_code": 200}
    with pytest.raises(AddressRefused):
        run_capability("webhook.post", context(allow_loopback=True), KEY,
                       {"url": "https://10.0.0.5/hook", "payload": {}})


@pytest.mark.parametrize("url", ["http://hooks.example.com/", "https://user:pw@hooks.example.com/"])
def test_only_plain_https_addresses_are_called(url, public_dns):
    with pytest.raises(ProviderRefused):
        run_capability("webhook.post", context(), KEY, {"url": url, "payload": {}})


@responses.activate
def test_a_redirect_is_not_followed(public_dns):
    responses.post("https://hooks.example.com/hapex", status=302, headers={"Location": "https://169.254.169.254/"})
    with pytest.raises(ProviderRefused):
        run_capability("webhook.post", context(), KEY, {"url": "https://hooks.example.com/hapex", "payload": {}})
    assert len(responses.calls) == 1


@responses.activate
def test_receiver_errors_map_like_any_provider(public_dns):
    responses.post("https://hooks.example.com/hapex", status=503, headers={"Retry-After": "9"})
    with pytest.raises(ProviderTransient) as caught:
        run_capability("webhook.post", context(), KEY, {"url": "https://hooks.example.com/hapex", "payload": {}})
    assert caught.value.retry_after == 9.0


def test_a_webhook_without_a_signing_key_fails_clearly(public_dns):
    with pytest.raises(StepFailed, match="signing key"):
        run_capability("webhook.post", context(), None, {"url": "https://hooks.example.com/", "payload": {}})


def _listener() -> tuple[socket.socket, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)

    def accept_and_close() -> None:
        try:
            conn, _ = server.accept()
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    return server, thread


def test_a_name_that_re_resolves_to_loopback_is_refused_at_connect_time(public_dns):
    """DNS rebinding: the check saw a public address, the socket reached 127.0.0.1."""
    server, thread = _listener()
    port = server.getsockname()[1]
    try:
        with pytest.raises(AddressRefused):
            run_capability("webhook.post", context(), KEY, {"url": f"https://localhost:{port}/hook", "payload": {}})
    finally:
        server.close()
        thread.join(5)


def test_the_connect_time_guard_lets_loopback_through_only_with_the_override(public_dns):
    server, thread = _listener()
    port = server.getsockname()[1]
    try:
        # The guard passes; the listener then hangs up during TLS, which is an ordinary transient failure.
        with pytest.raises(ProviderTransient):
            run_capability("webhook.post", context(allow_loopback=True), KEY,
                            {"url": f"https://localhost:{port}/hook", "payload": {}})
    finally:
        server.close()
        thread.join(5)


@pytest.mark.parametrize("address", [
    "64:ff9b:1::7f00:1", "64:ff9b:1::a9fe:a9fe", "::ffff:0:7f00:1", "::127.0.0.1", "fec0::1", "192.0.0.8",
    "100.64.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::ffff:10.0.0.1",
])
def test_ipv6_and_special_ranges_that_reach_private_networks_are_refused(address):
    import ipaddress

    from agent_service.capabilities.webhook import address_allowed

    assert not address_allowed(ipaddress.ip_address(address))


def test_an_ordinary_public_address_is_allowed():
    import ipaddress

    from agent_service.capabilities.webhook import address_allowed

    assert address_allowed(ipaddress.ip_address("93.184.216.34"))
    assert address_allowed(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
