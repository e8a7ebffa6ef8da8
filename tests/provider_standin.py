"""A local HTTPS stand-in for the providers, for tests that cross a process boundary.

Worker processes cannot be reached by `responses`, so their calls go to this server on
loopback (HAPEX_<PROVIDER>_API_BASE_URL and _TOKEN_URL point here, HAPEX_OUTBOUND_CA_BUNDLE
trusts its CA). It answers the way the real APIs do and records what it was asked.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from hapex.localstack.local_tls import LocalTLS

# Bounds a held answer only so that a test that never releases it cannot hang the stand-in forever.
HOLD_LIMIT = 600.0


@dataclass
class StandInState:
    calls: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    authorizations: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    email_body: str = "Hello from a customer"
    llm_reply: str = "Two customers wrote about late orders."
    issued_codes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Scripted answers of POST /v1/messages, first in first out (a status and a JSON body each);
    # when it is empty the stand-in answers with llm_reply as plain text.
    llm_script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # The x-api-key header of each POST /v1/messages, to check which key the agent sent.
    llm_api_keys: list[str] = field(default_factory=list)
    # Paths (e.g. "POST /chat.postMessage") whose answers wait until released, to catch a worker mid-call.
    holds: dict[str, threading.Event] = field(default_factory=dict)
    # Gmail for polls: the mailbox's history id, and the emails that arrived after it began (oldest first).
    gmail_history_start: int = 100
    arrived: list[str] = field(default_factory=list)

    def arrive(self, count: int) -> list[str]:
        """New emails, each one history id later."""
        with self.lock:
            new = [f"new{len(self.arrived) + n:05d}" for n in range(count)]
            self.arrived.extend(new)
        return new

    def hold(self, key: str) -> None:
        """Answer calls to key only once release(key) is called (or after HOLD_LIMIT seconds)."""
        with self.lock:
            self.holds[key] = threading.Event()

    def release(self, key: str) -> None:
        with self.lock:
            held = self.holds.pop(key, None)
        if held is not None:
            held.set()

    def script_llm(self, *answers: dict[str, Any], status: int = 200) -> None:
        """Queue Messages API answers for the next calls, in order."""
        with self.lock:
            self.llm_script.extend((status, answer) for answer in answers)

    def next_llm_answer(self) -> tuple[int, dict[str, Any]] | None:
        with self.lock:
            return self.llm_script.pop(0) if self.llm_script else None

    def record(self, key: str, body: bytes, authorization: str | None) -> None:
        with self.lock:
            self.calls[key] += 1
            self.bodies.setdefault(key, []).append(body)
            self.authorizations.setdefault(key, []).append(authorization or "")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: Any, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        state = self.server.state
        state.record(f"GET {url.path}", b"", self.headers.get("Authorization"))
        held = state.holds.get(f"GET {url.path}")
        if held is not None:
            held.wait(HOLD_LIMIT)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/gmail/v1/users/me/profile":
            self._send(200, {"emailAddress": "owner@example.com",
                             "historyId": str(state.gmail_history_start + len(state.arrived))})
        elif url.path == "/gmail/v1/users/me/history":
            start = int(query.get("startHistoryId", "0"))
            records = [{"id": str(state.gmail_history_start + n + 1),
                        "messagesAdded": [{"message": {"id": mid, "threadId": "t" + mid, "labelIds": ["INBOX"]}}]}
                       for n, mid in enumerate(list(state.arrived)) if state.gmail_history_start + n + 1 > start]
            self._send(200, {"history": records, "historyId": str(state.gmail_history_start + len(state.arrived))})
        elif url.path == "/gmail/v1/users/me/messages" and "after:" in query.get("q", ""):
            found = [{"id": mid, "threadId": "t" + mid} for mid in reversed(state.arrived)]
            self._send(200, {"messages": found, "resultSizeEstimate": len(found)})
        elif url.path == "/gmail/v1/users/me/messages":
            self._send(200, {"messages": [{"id": "m1", "threadId": "t1"}], "resultSizeEstimate": 1})
        elif url.path.startswith("/gmail/v1/users/me/messages/"):
            now_ms = str(int(time.time() * 1000))
            self._send(200, {"id": url.path.rsplit("/", 1)[1], "threadId": "t1", "internalDate": now_ms,
                             "snippet": state.email_body,
                             "payload": {"headers": [{"name": "From", "value": "customer@example.com"},
                                                     {"name": "Subject", "value": state.email_body},
                                                     {"name": "Date", "value": "Sat, 28 Nov 2026 08:00:00 +0000"}]}})
        elif url.path == "/authorize":
            self._consent_page(parse_qs(url.query))
        else:
            self._send(404, {"error": "not_found"})

    def _consent_page(self, query: dict[str, list[str]]) -> None:
        """A provider's consent screen: one button that grants what was asked."""
        params = {k: v[0] for k, v in query.items()}
        code = f"code-{len(self.server.state.issued_codes) + 1}"
        self.server.state.issued_codes[code] = params
        answer = {"code": code, "state": params.get("state", "")}
        if self.server.issuer:
            answer["iss"] = self.server.issuer
        target = params.get("redirect_uri", "") + "?" + urlencode(answer)
        html = (f"<!doctype html><title>Stand-in consent</title><h1>Allow Hapex?</h1>"
                f"<p id=scopes>{params.get('scope', '')}</p><a id=allow href=\"{target}\">Allow</a>").encode()
        self._send(200, html, "text/html; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        body = self._body()
        state = self.server.state
        state.record(f"POST {url.path}", body, self.headers.get("Authorization"))
        held = state.holds.get(f"POST {url.path}")
        if held is not None:
            held.wait(HOLD_LIMIT)
        if url.path == "/v1/messages":
            with state.lock:
                state.llm_api_keys.append(self.headers.get("x-api-key") or "")
            scripted = state.next_llm_answer()
            if scripted is not None:
                self._send(*scripted)
                return
            self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
                             "content": [{"type": "text", "text": state.llm_reply}], "stop_reason": "end_turn",
                             "usage": {"input_tokens": 321, "output_tokens": 12}})
        elif url.path == "/chat.postMessage":
            self._send(200, {"ok": True, "channel": "C0123456", "ts": f"{time.time():.6f}"})
        elif url.path == "/token":
            if (self.headers.get("Content-Type") or "").startswith("application/json"):  # Notion's shape
                form = json.loads(body or b"{}")
            else:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            scope = state.issued_codes.get(form.get("code", ""), {}).get("scope", "")
            self._send(200, {"access_token": f"standin-access-{state.calls['POST /token']}",
                             "refresh_token": "standin-refresh", "expires_in": 3600, "token_type": "Bearer",
                             "scope": scope})
        elif url.path == "/revoke":
            self._send(200, {})
        elif url.path == "/hook":
            self._send(200, {"received": True})
        else:
            self._send(404, {"error": "not_found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: StandInState
    issuer: str | None = None


class ProviderStandIn:
    """Start with `with ProviderStandIn(tls) as standin:`; `standin.url` is its base URL."""

    def __init__(self, tls: LocalTLS, *, issuer: str | None = None) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = StandInState()
        self.server.issuer = issuer
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://localhost:{self.server.server_address[1]}"
        self.ca_file = str(tls.ca_cert)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def state(self) -> StandInState:
        return self.server.state

    def provider_environment(self, providers: tuple[str, ...] = ("google", "slack", "anthropic", "notion")
                             ) -> dict[str, str]:
        env = {"HAPEX_OUTBOUND_CA_BUNDLE": self.ca_file}
        for provider in providers:
            prefix = f"HAPEX_{provider.upper()}"
            env[f"{prefix}_API_BASE_URL"] = self.url
            env[f"{prefix}_TOKEN_URL"] = f"{self.url}/token"
            env[f"{prefix}_AUTHORIZATION_URL"] = f"{self.url}/authorize"
            env[f"{prefix}_REVOCATION_URL"] = f"{self.url}/revoke"
        return env

    def __enter__(self) -> ProviderStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for key in list(self.state.holds):
            self.state.release(key)
        self.server.shutdown()
        self.server.server_close()
