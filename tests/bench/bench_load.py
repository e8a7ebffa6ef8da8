"""The fallback load generator when wrk is not installed: keep-alive HTTPS from several processes.

`python -m tests.bench.bench_load URL CA SECONDS CONNECTIONS [HEADER ...]` runs CONNECTIONS
keep-alive connections (one thread each) in this process for SECONDS, each sending the next
GET as soon as the previous answer is read, and prints JSON: requests, non-200 answers and
every latency in milliseconds. The driver starts several such processes and merges them.

With `--gap-ms=N` first, each connection waits until N ms after its previous request began
before sending the next (a steady rate, as people browsing, rather than as fast as it answers).
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit


def _connection_loop(url: str, context: ssl.SSLContext, deadline: float, headers: dict[str, str],
                     latencies: list[float], errors: list[int], gap: float = 0.0) -> None:
    parts = urlsplit(url)
    path = parts.path or "/"
    connection = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port, context=context, timeout=30)
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        if gap:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += gap
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors.append(0)
            connection.close()
            connection = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port, context=context,
                                                     timeout=30)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            errors.append(response.status)
    connection.close()


def main(argv: list[str]) -> int:
    gap = 0.0
    if argv and argv[0].startswith("--gap-ms="):
        gap = float(argv[0].split("=", 1)[1]) / 1000
        argv = argv[1:]
    url, ca_file, seconds, connections = argv[0], argv[1], float(argv[2]), int(argv[3])
    headers = dict(item.split(": ", 1) for item in argv[4:])
    context = ssl.create_default_context(cafile=ca_file)
    deadline = time.monotonic() + seconds
    per_thread: list[list[float]] = [[] for _ in range(connections)]
    errors: list[int] = []
    threads = [threading.Thread(target=_connection_loop,
                                args=(url, context, deadline, headers, per_thread[i], errors, gap))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [value for values in per_thread for value in values]
    json.dump({"requests": len(latencies), "errors": len(errors), "latencies_ms": latencies}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
