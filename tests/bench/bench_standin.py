"""A webhook receiver on loopback that answers at once and times its own part of each call.

Run as its own process (`python -m tests.bench.bench_standin CERT KEY PORT_FILE`), so that
its CPU is not the benchmark driver's. For each POST it records, under the request's
X-Hapex-Idempotency-Key ("<run_id>:<step_index>"), the time from the moment the whole
request was read to the moment the answer was handed to the socket: the stand-in's own
time, which the engine's step duration is then compared against. GET /__stats returns
those times in milliseconds; the TLS handshake and the client's side are not counted in
them, so they are overhead of the step, as they would be against a real receiver.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
import time
from pathlib import Path

ANSWER = b'{"received":true}'
IDEMPOTENCY_HEADER = b"x-hapex-idempotency-key"


class StandIn:
    """Minimal HTTP/1.1 with keep-alive: enough for requests' POSTs and one stats GET."""

    def __init__(self) -> None:
        self.own_ms: dict[str, float] = {}
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                headers = {}
                for line in lines[1:]:
                    if b":" in line:
                        name, value = line.split(b":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                if length:
                    await reader.readexactly(length)
                started = time.perf_counter()
                if method == b"GET" and path == b"/__stats":
                    body = json.dumps({"requests": self.requests, "own_ms": self.own_ms}).encode()
                else:
                    body = ANSWER
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                if method == b"POST":
                    self.requests += 1
                    key = headers.get(IDEMPOTENCY_HEADER)
                    if key:
                        self.own_ms[key.decode()] = (time.perf_counter() - started) * 1000
                await writer.drain()
                if headers.get(b"connection", b"").lower() == b"close":
                    return
        finally:
            writer.close()


async def serve(cert: str, key: str, port_file: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    standin = StandIn()
    server = await asyncio.start_server(standin.handle, "127.0.0.1", 0, ssl=context, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
