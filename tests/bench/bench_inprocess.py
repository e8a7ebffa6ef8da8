"""The run engine alone, in-process: execute_run on one-step webhook runs, CPU per run.

`python -m tests.bench.bench_inprocess [--runs 600] [--steps 1] [--profile out.prof]`

No queue and no worker: runs are queued (start_run) up front, then executed one after the
other in this thread against the loopback stand-in, as a worker's job would execute them.
Reported per run: this thread's CPU (time.thread_time), the process's (the pool's threads
too), and the CPU of the one PostgreSQL backend the engine's pool holds (its schedstat, in
nanoseconds), plus wall time and the transactions the server counted. This is the figure
to A/B two versions of the engine with (run each in turn, interleaved); the figures of
`--only engine` add the queue's own cost and the machine's noise on top.

With --profile, a cProfile of the measured runs with a CPU clock (time.thread_time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from agent_service.capabilities import LLMSettings
from agent_service.runs.engine import execute_run
from agent_service.runtime import AgentRuntime
from agent_service.vault import Keyring, Vault
from shared.config import PoolSettings
from shared.db import Database
from shared.secret import Secret
from tests.bench import bench_engine
from tests.bench.bench_setup import BenchServer


def backend_cpu_ns(pid: int) -> int:
    """Nanoseconds on CPU so far of one local process (Linux schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    server = BenchServer.start()
    log_dir = Path(tempfile.mkdtemp(prefix="hapex-inprocess-"))
    size = replace(bench_engine.QUICK, clients=args.clients, ca_bundle="standin")
    try:
        with server.fresh_database("inprocess") as database:
            bench = bench_engine.EngineBench(database, size, log_dir, server.postmaster())
            engine_db = Database(database.agent_dsn, PoolSettings(1, 1), name="bench-engine")
            try:
                bench.start()
                engine_db.open()
                rt = AgentRuntime(db=engine_db, vault=Vault(Keyring(bench.key), engine_db), oauth_clients={},
                                  llm=LLMSettings(api_key=Secret("unused"), model="unused"),
                                  verify=str(bench.ca_bundle), allow_loopback_webhooks=True)
                with engine_db.connection() as conn:
                    row = conn.execute("SELECT pg_backend_pid()").fetchone()
                assert row is not None
                backend = int(row[0])
                print(f"engine's PostgreSQL backend: pid {backend}", file=sys.stderr, flush=True)

                def execute(run_ids: list[tuple[uuid.UUID, uuid.UUID]]) -> list[str]:
                    return [execute_run(rt, client_id=client_id, run_id=run_id) for client_id, run_id in run_ids]

                def queued(count: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
                    run_ids, _ = bench.enqueue_runs_at_once(count, args.steps)
                    with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
                        rows = owner.execute("SELECT run_id, client_id FROM runs WHERE run_id = ANY(%s)",
                                             [run_ids]).fetchall()
                    clients = dict(rows)
                    return [(clients[run_id], run_id) for run_id in run_ids]

                warm = execute(queued(args.warm_up))
                with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
                    owner.execute("VACUUM (ANALYZE)")
                    owner.execute("SELECT pg_stat_reset()")
                todo = queued(args.runs)
                with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
                    stats_before = _xact_stats(owner)
                profile = cProfile.Profile(time.thread_time) if args.profile else None
                pg0, th0, pr0 = backend_cpu_ns(backend), time.thread_time(), time.process_time()
                wall0 = time.perf_counter()
                if profile is not None:
                    profile.enable()
                statuses = execute(todo)
                if profile is not None:
                    profile.disable()
                wall, thread = time.perf_counter() - wall0, time.thread_time() - th0
                process, pg = time.process_time() - pr0, (backend_cpu_ns(backend) - pg0) / 1e9
                with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
                    stats_after = _xact_stats(owner)
                if profile is not None:
                    profile.dump_stats(args.profile)
                with engine_db.connection() as conn:
                    # Statements PostgreSQL still plans at every execution (its generic plan looked dearer).
                    replanned = [f"{row[0][:70]}: {row[1]} custom / {row[2]} generic" for row in conn.execute(
                        "SELECT regexp_replace(statement, '\\s+', ' ', 'g'), custom_plans, generic_plans "
                        "FROM pg_prepared_statements WHERE custom_plans > generic_plans").fetchall()]
                n = len(todo)
                return {
                    "runs": n,
                    "steps": args.steps,
                    "not_succeeded": sum(1 for s in statuses + warm if s != "succeeded"),
                    "thread_cpu_ms_per_run": round(thread * 1000 / n, 3),
                    "process_cpu_ms_per_run": round(process * 1000 / n, 3),
                    "postgres_backend_cpu_ms_per_run": round(pg * 1000 / n, 3),
                    "total_cpu_ms_per_run": round((process + pg) * 1000 / n, 3),
                    "wall_ms_per_run": round(wall * 1000 / n, 3),
                    # Counted by the server: the engine's transactions, the pool's checks on checkout (an empty
                    # query is a transaction too) and a few of this harness's own.
                    "replanned_statements": replanned,
                    "transactions_per_run": round((stats_after[0] - stats_before[0]) / n, 2),
                }
            finally:
                engine_db.close()
                bench.stop()
    finally:
        server.stop()


def _xact_stats(owner: psycopg.Connection[Any]) -> tuple[int, int]:
    owner.execute("SELECT pg_stat_force_next_flush()")
    row = owner.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database "
                        "WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--warm-up", type=int, default=60)
    parser.add_argument("--steps", type=int, default=1, choices=(1, 3))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--profile", help="write a cProfile (CPU clock) of the measured runs here")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
