"""A webhook receiver on loopback that answers at once and times its own part of each call.

Run as its own process (`python -m tests.bench.bench_standin CERT KEY PORT_FILE`), so that
its CPU is not the benchmark driver's. For each POST it records, under the request's
X-Hapex-Idempotency-Key ("<run_id>:<step_index>"), the time from the moment the whole
request was read to the moment the answer was handed to the socket: the stand-in's own
time, which the engine's step duration is then compared against. GET /__stats returns
those times in milliseconds; the TLS handshake and the client's side are not counted in
them, so they are overhead of the step, as they would be against a real receiver.

POST /v1/messages answers as the Anthropic Messages API would, for the chat's cost benchmark
(tests/bench/bench_chat.py): an `ask_question` tool call, and a `usage` counted the way the
real API counts prompt caching (see `messages_usage`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

ANSWER = b'{"received":true}'
IDEMPOTENCY_HEADER = b"x-hapex-idempotency-key"
# The real API's minimum cacheable prompt on Claude Sonnet 5.5 (a shorter prefix is not cached).
MIN_CACHEABLE_TOKENS = 512
CACHE_TTL_SECONDS = 300.0
OUTPUT_TOKENS = 60


def tokens(value: Any) -> int:
    """A stand-in tokenizer: about four characters a token, as JSON (what matters is that it is stable)."""
    return max(1, len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) // 4)


def prompt_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's blocks in the order the API caches them: tools, then system, then the messages' content."""
    blocks: list[dict[str, Any]] = [dict(tool) for tool in body.get("tools") or []]
    system = body.get("system") or []
    blocks += [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
    for turn in body.get("messages") or []:
        content = turn.get("content")
        blocks += ([{"type": "text", "text": content}] if isinstance(content, str)
                   else [dict(b) for b in content])
    return blocks


class PromptCache:
    """Prefixes written at a cache breakpoint, by hash, for five minutes from their last use."""

    def __init__(self) -> None:
        self.entries: dict[str, float] = {}

    def usage(self, body: dict[str, Any], now: float) -> dict[str, int]:
        """What the real API reports: `cache_read_input_tokens` for the longest cached prefix ending at a
        breakpoint, `cache_creation_input_tokens` for the rest up to the last breakpoint (written now), and
        `input_tokens` for what follows the last breakpoint; a prefix under the minimum is neither."""
        blocks = prompt_blocks(body)
        breakpoints = [i for i, block in enumerate(blocks) if block.get("cache_control")]
        total = sum(tokens({k: v for k, v in b.items() if k != "cache_control"}) for b in blocks)
        if not breakpoints:
            return {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        digest, running, prefixes = hashlib.sha256(str(body.get("model")).encode()), 0, []
        for index, block in enumerate(blocks):
            plain = {k: v for k, v in block.items() if k != "cache_control"}
            digest.update(json.dumps(plain, sort_keys=True).encode())
            running += tokens(plain)
            if index in breakpoints:
                prefixes.append((digest.hexdigest(), running))
        self.entries = {key: at for key, at in self.entries.items() if now - at < CACHE_TTL_SECONDS}
        read = 0
        for key, length in prefixes:
            if key in self.entries:
                read = length
        last_key, last_length = prefixes[-1]
        if last_length < MIN_CACHEABLE_TOKENS:
            return {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        for key, length in prefixes:
            if length >= MIN_CACHEABLE_TOKENS:
                self.entries[key] = now
        return {"input_tokens": total - last_length, "cache_creation_input_tokens": last_length - read,
                "cache_read_input_tokens": read}


def messages_answer(body: dict[str, Any], cache: PromptCache) -> bytes:
    counted = cache.usage(body, time.monotonic())
    return json.dumps({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": [{"type": "tool_use", "id": "toolu_bench", "name": "ask_question",
                     "input": {"question": "Which channel should it post to?"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {**counted, "output_tokens": OUTPUT_TOKENS},
    }).encode()


class StandIn:
    """Minimal HTTP/1.1 with keep-alive: enough for requests' POSTs and one stats GET."""

    def __init__(self) -> None:
        self.own_ms: dict[str, float] = {}
        self.requests = 0
        self.cache = PromptCache()

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
                received = await reader.readexactly(length) if length else b""
                started = time.perf_counter()
                if method == b"GET" and path == b"/__stats":
                    body = json.dumps({"requests": self.requests, "own_ms": self.own_ms}).encode()
                elif method == b"POST" and path == b"/v1/messages":
                    body = messages_answer(json.loads(received), self.cache)
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
