"""How many durable commits per second the PostgreSQL under the benchmarks takes.

Each commit is one small INSERT in its own transaction (fsync and synchronous_commit as the
server is configured), from 1 and from 8 connections at once (group commit). A run costs a
handful of such commits, so this number divided by the write transactions per run is the
ceiling the database puts on runs per second, whatever the number of workers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from tests.bench.bench_setup import BenchServer
from tests.bench.bench_stats import rounded


def _commit_loop(dsn: str, deadline: float, counts: list[int], index: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            conn.execute("INSERT INTO bench_commits (n) VALUES (%s)", [index])
            counts[index] += 1


def _commits_per_s(dsn: str, connections: int, seconds: float) -> float:
    counts = [0] * connections
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [threading.Thread(target=_commit_loop, args=(dsn, deadline, counts, i)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def run(server: BenchServer, *, seconds: float) -> dict[str, Any]:
    with server.fresh_database("commits") as database:
        with psycopg.connect(database.owner_dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, n integer NOT NULL, "
                         "at timestamptz NOT NULL DEFAULT now())")
        return {
            "commits_per_s_1_connection": rounded(_commits_per_s(database.owner_dsn, 1, seconds), 0),
            "commits_per_s_8_connections": rounded(_commits_per_s(database.owner_dsn, 8, seconds), 0),
        }
