"""A platform's load balancer in a few lines, for tests: TLS (or plain) in front, round robin behind.

It terminates TLS with the test CA's certificate, forwards each request over plain HTTP to the next
backend in turn with X-Forwarded-For, -Proto and -Host set as a balancer sets them, and records which
backend answered, so a test can check that consecutive requests really went to different processes.
"""

from __future__ import annotations

import http.client
import itertools
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hapex.localstack.local_tls import LocalTLS

# Hop-by-hop headers (RFC 9110 7.6.1) and those the balancer sets itself.
_NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                  "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
_NOT_RETURNED = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        backend = self.server.next_backend()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers.update({"X-Forwarded-For": self.client_address[0], "X-Forwarded-Proto": self.server.proto,
                        "X-Forwarded-Host": self.headers.get("Host", "")})
        if body is not None:
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*backend, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        with self.server.lock:
            self.server.served.append((backend[1], self.command, self.path.split("?")[0]))
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _NOT_RETURNED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _forward  # noqa: N815 - http.server's names


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backends: list[tuple[str, int]], proto: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._cycle = itertools.cycle(backends)
        self.proto = proto
        self.lock = threading.Lock()
        self.served: list[tuple[int, str, str]] = []

    def next_backend(self) -> tuple[str, int]:
        with self.lock:
            return next(self._cycle)


class Balancer:
    """`with Balancer([("127.0.0.1", port), ...], tls=tls) as lb:` serves at `lb.url`."""

    def __init__(self, backends: list[tuple[str, int]], *, tls: LocalTLS | None) -> None:
        self.server = _Server(backends, "https" if tls else "http")
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.port = self.server.server_address[1]
        self.url = f"{scheme}://localhost:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def served(self) -> list[tuple[int, str, str]]:
        """(backend port, method, path) of every request answered, in order."""
        with self.server.lock:
            return list(self.server.served)

    def __enter__(self) -> Balancer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
