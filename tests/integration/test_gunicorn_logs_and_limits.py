"""Both services under real gunicorn over TLS at LOG_LEVEL=DEBUG: no secret a client sent reaches the
log, whatever gunicorn itself logs, and an oversized body is answered 413 rather than cut off.

gunicorn logs request lines in its own code (its default pre_request hook, its invalid-request
warnings, "Error handling request <uri>"), outside the apps' masked access log, so only a real
gunicorn process shows whether a canary escapes. Its output is captured and hunted through.
"""

from __future__ import annotations

import signal
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from tests.conftest import create_database_from, drop_database
from tests.e2e.conftest import (
    free_port,
    intake_environment,
    stack_environment,
    start_service,
    wait_for_health,
)


@dataclass
class DebugStack:
    intake_url: str
    agent_url: str
    tls: LocalTLS
    env: dict[str, str]
    log_dir: Path
    processes: list

    @property
    def ca_file(self) -> str:
        return str(self.tls.ca_cert)

    def stop(self) -> str:
        """Stop both services (flushing their logs) and return everything they wrote."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except Exception:
                process.kill()
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture
def debug_stack(pg_server, migrated_template, tmp_path_factory) -> Iterator[DebugStack]:
    database = create_database_from(pg_server, migrated_template)
    root = tmp_path_factory.mktemp("debug-stack")
    tls = ensure_local_tls(root / "tls")
    log_dir = root / "logs"
    log_dir.mkdir()
    intake_port, agent_port = free_port(), free_port()
    env = stack_environment(database, tls, intake_port, agent_port)
    env["LOG_LEVEL"] = "DEBUG"
    stack = DebugStack(f"https://localhost:{intake_port}", f"https://localhost:{agent_port}", tls, env, log_dir, [])
    try:
        stack.processes.append(start_service("agent", env, log_dir))
        stack.processes.append(start_service("intake", intake_environment(env), log_dir))
        wait_for_health(stack.agent_url + "/healthz", stack.ca_file, stack.processes[0])
        wait_for_health(stack.intake_url + "/healthz", stack.ca_file, stack.processes[1])
        yield stack
    finally:
        stack.stop()
        drop_database(pg_server, database.name)


def raw_exchange(stack: DebugStack, url: str, data: bytes) -> bytes:
    """Send bytes as they are over TLS (gunicorn, not a client library, decides what they mean)."""
    port = int(url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=stack.ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(data)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


def test_no_secret_a_client_sends_reaches_either_services_log_at_debug(debug_stack):
    canary = "Canary" + uuid.uuid4().hex
    bearer = {"Authorization": f"Bearer {canary}Bearer"}
    intake, agent, ca = debug_stack.intake_url, debug_stack.agent_url, debug_stack.ca_file
    hook = requests.post(f"{intake}/hooks/{canary}Hook", data=b"{}", verify=ca, timeout=20)
    assert hook.status_code == 404
    requests.get(f"{intake}/connections/oauth/google/callback?code={canary}Code&state={canary}State",
                 verify=ca, timeout=20)
    requests.get(f"{agent}/v1/clients/{uuid.uuid4()}/connections", headers=bearer, verify=ca, timeout=20)
    for url in (intake, agent):
        # A request line gunicorn refuses, a header line it cannot parse, a bad header name, a bad version.
        for probe in (
            f"POST /hooks/{canary}Line HTTP/1.1 trailing\r\nHost: localhost\r\n\r\n",
            f"POST /hooks/{canary}Header HTTP/1.1\r\nHost: localhost\r\nAuthorization Bearer {canary}Value\r\n\r\n",
            f"GET /hooks/{canary}Name HTTP/1.1\r\nHost: localhost\r\nX-{canary}(Name): 1\r\n\r\n",
            f"GET /hooks/{canary}Version HTTP/9.{canary}\r\nHost: localhost\r\n\r\n",
        ):
            answer = raw_exchange(debug_stack, url, probe.encode())
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    logs = debug_stack.stop()
    assert "Invalid request from ip=" in logs, "gunicorn's invalid-request warning never ran"
    assert "/hooks/<secret>" in logs  # the apps' access log saw the webhook call, masked
    assert canary not in logs, [line for line in logs.splitlines() if canary in line][:5]


def test_a_body_of_a_few_mib_is_answered_413_not_cut_off(debug_stack):
    """Without reading the body to its end, gunicorn closes a connection with unread bytes and the client
    gets a reset mid-upload instead of the answer (on main: a racy SSLEOFError at /hooks/)."""
    body = b"a=" + b"x" * (6 * 1024 * 1024)
    service = {"Authorization": f"Bearer {debug_stack.env['AGENT_SERVICE_TOKEN']}"}
    targets = [(debug_stack.intake_url + "/signup", {}, "text/html"),
               (debug_stack.intake_url + "/hooks/" + "h" * 43, {}, "application/json"),
               (f"{debug_stack.agent_url}/v1/clients/{uuid.uuid4()}/connections/api-key", service, "application/json")]
    for content_type in ("application/x-www-form-urlencoded", "application/json", "multipart/form-data; boundary=x"):
        for url, headers, answered_as in targets * 2:
            response = requests.post(url, data=body, headers={**headers, "Content-Type": content_type},
                                     verify=debug_stack.ca_file, timeout=60)
            assert response.status_code == 413, (url, response.status_code)
            assert response.headers["Content-Type"].startswith(answered_as)
    # Sent chunked (no Content-Length), the same body is 413 too, not cut at the limit and read as its first MiB.
    chunks = [body[at:at + 65536] for at in range(0, len(body), 65536)]
    for url, headers, answered_as in targets:
        response = requests.post(url, data=iter(chunks), headers={**headers, "Content-Type": "application/json"},
                                 verify=debug_stack.ca_file, timeout=60)
        assert response.status_code == 413, (url, response.status_code)
    small = requests.post(debug_stack.intake_url + "/signup", data=iter([b"email=a"]), verify=debug_stack.ca_file,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
    assert small.status_code == 400  # read whole and answered by the form (no CSRF token), not 413
