"""Outbound HTTPS over real TLS on loopback: one preloaded context per bundle, and no other trust."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import requests

from agent_service.capabilities.base import LLMSettings, ProviderHTTP, ProviderTransient, StepContext
from agent_service.capabilities.registry import run_capability
from agent_service.chat.model import call_messages
from agent_service.config import AgentConfig
from agent_service.connections.provider_oauth import OAuthClient, refresh_access_token, revoke
from agent_service.outbound_tls import OutboundTLSAdapter, TrustMismatch, outbound_session, tls_context
from agent_service.runtime import AgentRuntime
from hapex.localstack.local_secrets import new_encryption_key, new_token
from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from shared.catalog import get_provider
from shared.config import Environment, resolve_catalog
from shared.secret import Secret
from tests.provider_standin import ProviderStandIn

CLIENT = OAuthClient("client-123", Secret("client-secret"))


def agent_config(environ: dict[str, str]) -> AgentConfig:
    """An agent configuration with valid secrets and the given outbound settings."""
    return AgentConfig.from_env({"AGENT_DATABASE_URL": "postgresql://hapex_agent@localhost/hapex",
                                 "AGENT_SERVICE_TOKEN": new_token(), "AGENT_ADMIN_TOKEN": new_token(),
                                 "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(), **environ})


@pytest.fixture
def trusted(tmp_path: Path) -> LocalTLS:
    """The configured bundle's CA and a server it signed."""
    return ensure_local_tls(tmp_path / "trusted")


@pytest.fixture
def stranger(tmp_path: Path) -> LocalTLS:
    """Another CA, which the configured bundle does not hold."""
    return ensure_local_tls(tmp_path / "stranger")


@pytest.fixture
def standin(trusted: LocalTLS) -> Iterator[ProviderStandIn]:
    with ProviderStandIn(trusted) as server:
        yield server


@pytest.fixture
def impostor(stranger: LocalTLS) -> Iterator[ProviderStandIn]:
    with ProviderStandIn(stranger) as server:
        yield server


@pytest.fixture
def load_count(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CA file loaded into any SSL context in this process during the test."""
    loads: list[str] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, cafile: Any = None, *args: Any, **kwargs: Any) -> None:
        loads.append(str(cafile))
        original(self, cafile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return loads


def test_a_server_signed_by_the_configured_bundle_is_accepted(standin, trusted):
    bundle = str(trusted.ca_cert)
    response = outbound_session(bundle).post(f"{standin.url}/revoke", timeout=5, verify=bundle)
    assert response.status_code == 200


@pytest.mark.parametrize("trust_env", [False, True])
def test_a_server_from_an_unknown_ca_is_refused_even_when_requests_ca_bundle_trusts_it(
        impostor, trusted, stranger, monkeypatch, trust_env):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger.ca_cert))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(stranger.ca_cert))
    bundle = str(trusted.ca_cert)
    session = outbound_session(bundle)
    session.trust_env = trust_env
    with pytest.raises(requests.exceptions.SSLError):
        session.post(f"{impostor.url}/revoke", timeout=5, verify=bundle)
    assert impostor.state.calls == {}


def test_the_same_server_is_accepted_once_its_ca_is_the_configured_bundle(impostor, stranger):
    """The refusal above is the bundle's doing, not a broken server."""
    bundle = str(stranger.ca_cert)
    assert outbound_session(bundle).post(f"{impostor.url}/revoke", timeout=5, verify=bundle).status_code == 200


@pytest.mark.parametrize("verify", [True, False, None, "other"])
def test_a_request_asking_for_other_trust_than_its_session_is_refused_before_connecting(
        standin, trusted, stranger, verify):
    bundle = str(trusted.ca_cert)
    asked = str(stranger.ca_cert) if verify == "other" else verify
    with pytest.raises(TrustMismatch):
        outbound_session(bundle).post(f"{standin.url}/revoke", timeout=5, verify=asked)
    assert standin.state.calls == {}


def test_the_bundle_is_loaded_once_per_process_however_many_sessions_and_connections(
        standin, trusted, load_count):
    bundle = str(trusted.ca_cert)
    provider = resolve_catalog(Environment({"HAPEX_SLACK_API_BASE_URL": standin.url,
                                                   "HAPEX_SLACK_REVOCATION_URL": f"{standin.url}/revoke",
                                                   "HAPEX_SLACK_TOKEN_URL": f"{standin.url}/token"})).provider("slack")
    # The stand-in answers HTTP/1.0, so every request below is a new TLS connection.
    for _ in range(3):
        outbound_session(bundle).post(f"{standin.url}/revoke", timeout=5, verify=bundle)
    session = outbound_session(bundle)
    for _ in range(3):
        ProviderHTTP(provider, verify=bundle, session=session).request("POST", "/chat.postMessage")
    revoke(provider, CLIENT, token=Secret("xoxb-token"), token_type_hint="access_token", verify=bundle)
    refresh_access_token(provider, CLIENT, refresh_token=Secret("refresh"), verify=bundle)
    call_messages(LLMSettings(api_key=Secret("sk-ant-test"), base_url=standin.url), verify=bundle,
                  system=[], messages=[{"role": "user", "content": "hi"}], tools=[], read_timeout=5)
    assert standin.state.calls["POST /chat.postMessage"] == 3
    assert standin.state.calls["POST /token"] == 1 and standin.state.calls["POST /v1/messages"] == 1
    assert load_count == [bundle]


def test_the_runtime_loads_its_bundle_at_start_up_and_its_sessions_verify_with_it(standin, trusted, load_count):
    config = agent_config({"HAPEX_OUTBOUND_CA_BUNDLE": str(trusted.ca_cert), "HAPEX_SLACK_API_BASE_URL": standin.url})
    runtime = AgentRuntime.build(db=None, vault=None, config=config)  # type: ignore[arg-type]
    assert load_count == [str(trusted.ca_cert)]
    provider = runtime.provider("slack")
    http = ProviderHTTP(provider, verify=runtime.verify, session=runtime.http_session("slack"))
    http.request("POST", "/chat.postMessage")
    assert runtime.http_session("slack") is http.session
    assert load_count == [str(trusted.ca_cert)]


def test_an_unreadable_bundle_stops_the_runtime_at_start_up(tmp_path):
    missing = tmp_path / "no-such-bundle.pem"
    with pytest.raises(OSError):
        AgentRuntime.build(db=None, vault=None,  # type: ignore[arg-type]
                           config=agent_config({"HAPEX_OUTBOUND_CA_BUNDLE": str(missing)}))


def test_the_shared_context_accepts_no_further_cas_and_no_weaker_verification(trusted, stranger):
    context = tls_context(str(trusted.ca_cert))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(TrustMismatch):
        context.load_verify_locations(cafile=str(stranger.ca_cert))
    with pytest.raises(TrustMismatch):
        context.load_default_certs()
    with pytest.raises(TrustMismatch):
        context.verify_mode = ssl.CERT_NONE
    with pytest.raises(TrustMismatch):
        context.check_hostname = False
    assert len(context.get_ca_certs()) == 1


def test_a_session_shared_by_many_clients_keeps_no_cookies(receiver, trusted):
    runtime = AgentRuntime(db=None, vault=None, oauth_clients={}, llm=LLMSettings(api_key=None),  # type: ignore[arg-type]
                           verify=str(trusted.ca_cert))
    session = runtime.http_session("hubspot")
    url = f"https://localhost:{receiver.server_address[1]}/crm"
    for _ in range(2):
        session.post(url, timeout=5, verify=runtime.verify)
    assert receiver.cookies_seen == ["", ""]
    assert len(session.cookies) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_opens_its_own_connections_over_the_same_context(standin, trusted):
    bundle = str(trusted.ca_cert)
    session = outbound_session(bundle)
    assert session.post(f"{standin.url}/revoke", timeout=5, verify=bundle).status_code == 200
    adapter = session.get_adapter(standin.url)
    assert isinstance(adapter, OutboundTLSAdapter) and len(adapter.poolmanager.pools) == 1
    pid = os.fork()
    if pid == 0:  # the child: no pool of its parent's, and a request that still verifies
        code = 1
        try:
            fresh = len(adapter.poolmanager.pools) == 0
            ok = session.post(f"{standin.url}/revoke", timeout=5, verify=bundle).status_code == 200
            code = 0 if fresh and ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert session.post(f"{standin.url}/revoke", timeout=5, verify=bundle).status_code == 200


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _KeepAliveServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.cookies_seen.append(self.headers.get("Cookie") or "")
        body = b"x" * self.server.answer_bytes
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Set-Cookie", "affinity=one-client; Path=/; Secure")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _KeepAliveServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    answer_bytes = 17

    def __init__(self, tls: LocalTLS) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.lock = threading.Lock()
        self.cookies_seen: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        self.socket = context.wrap_socket(self.socket, server_side=True)


@pytest.fixture
def receiver(trusted: LocalTLS) -> Iterator[_KeepAliveServer]:
    server = _KeepAliveServer(trusted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _webhook(bundle: str, url: str) -> int:
    ctx = StepContext(client_id=uuid4(), run_id=uuid4(), step_index=0,
                      http=ProviderHTTP(get_provider("webhook"), verify=bundle),
                      llm=LLMSettings(api_key=None), idempotency_key=f"{uuid4()}:0", allow_loopback_webhooks=True)
    result = run_capability("webhook.post", ctx, Secret("whsec-key"), {"url": url, "payload": {"n": 1}})
    return int(result.output["status_code"])


def test_webhooks_to_one_receiver_reuse_a_verified_connection_when_the_answer_is_short(receiver, trusted,
                                                                                      load_count):
    url = f"https://localhost:{receiver.server_address[1]}/hook"
    assert [_webhook(str(trusted.ca_cert), url) for _ in range(3)] == [200, 200, 200]
    assert receiver.connections == 1
    assert load_count == [str(trusted.ca_cert)]


def test_a_webhook_answer_longer_than_the_drain_limit_is_not_read_and_its_connection_is_dropped(receiver, trusted):
    receiver.answer_bytes = 64_000
    url = f"https://localhost:{receiver.server_address[1]}/hook"
    assert [_webhook(str(trusted.ca_cert), url) for _ in range(2)] == [200, 200]
    assert receiver.connections == 2


def test_a_webhook_receiver_from_an_unknown_ca_is_refused(stranger, trusted, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger.ca_cert))
    server = _KeepAliveServer(stranger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ProviderTransient):
            _webhook(str(trusted.ca_cert), f"https://localhost:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
        server.server_close()
