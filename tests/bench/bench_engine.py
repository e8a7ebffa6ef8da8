"""The run engine through the real queue and real worker processes, against its own floor.

For 1, 2 and 4 worker processes (each `hapex serve worker` with WORKER_CONCURRENCY jobs at
once), on one fresh database:

- the bare queue: N no-op jobs committed at once, jobs/s to the last one done;
- one-step and three-step automations of webhook.post to a stand-in on loopback, N runs
  committed at once (spread over several clients): runs/s and steps/s to the last finish,
  the one-step figure as a ratio of the bare queue's;
- light load: runs enqueued one by one at a steady pace, each in its own transaction as
  the API does: enqueue-to-start and enqueue-to-finish latency, and per-step overhead,
  i.e. a step's recorded duration_ms minus the stand-in's own time for that very call
  (matched on the X-Hapex-Idempotency-Key it received).

Workers are added, never restarted, between worker counts; each count is warmed up first.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests

from agent_service.connections.lifecycle import connect_api_key
from agent_service.queue import defer
from agent_service.runs.triggers import start_run
from agent_service.vault import Keyring, Vault
from hapex.localstack.local_secrets import new_token
from shared.automations.repository import create_automation, set_status
from shared.catalog import PROVIDERS
from shared.config import PoolSettings
from shared.db import Database, tenant_transaction
from shared.secret import Secret
from tests.bench import bench_cpu
from tests.bench.bench_setup import (
    NOOP_TASK,
    BenchDatabase,
    BenchServer,
    base_environment,
    local_tls,
    outbound_ca_bundle,
    start_process,
    stop_processes,
    wait_until,
)
from tests.bench.bench_stats import percentile, rate, rounded

# Benchmarks only: lets webhook steps reach the stand-in on 127.0.0.1 (see agent_service/runs/engine.py).
LOOPBACK_SWITCH = "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS"
FINAL = ("succeeded", "failed", "cancelled")
LIGHT_LOAD = 0.25
PACED_SECONDS_MAX = 30.0


@dataclass(frozen=True)
class EngineSize:
    """How much work each measurement does."""

    noop_jobs: int
    one_step_runs: int
    three_step_runs: int
    paced_runs: int
    # At least this long between two paced runs, and long enough that they use at most
    # LIGHT_LOAD of the throughput just measured: latency is measured without a queue.
    paced_gap_seconds: float
    clients: int
    worker_counts: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 4
    warm_up_runs: int = 12
    # "certifi": what production trusts (certifi's bundle) plus the stand-in's CA; "standin": that CA alone,
    # as the test suite runs, which shows what the figures are once a bundle is not re-read per connection.
    ca_bundle: str = "certifi"
    # WORKER_NICE for the workers; None: the product's default, as `make run` starts them.
    worker_nice: int | None = None


FULL = EngineSize(noop_jobs=2000, one_step_runs=1000, three_step_runs=400, paced_runs=200,
                  paced_gap_seconds=0.04, clients=50)
QUICK = EngineSize(noop_jobs=40, one_step_runs=20, three_step_runs=8, paced_runs=5, paced_gap_seconds=0.03,
                   clients=4, warm_up_runs=3)


def webhook_automation(name: str, url: str, steps: int) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"kind": "manual"},
        "steps": [{"capability": "webhook.post", "input": {"url": url, "payload": {"event": "bench", "step": i}}}
                  for i in range(steps)],
    }


def cpu_ms_per_item(cpu: dict[str, float] | None, seconds: float, count: int) -> dict[str, float] | None:
    """CPU milliseconds each job or run cost the workers, PostgreSQL and the stand-in.

    Unlike a rate, this hardly moves when something else shares the machine, and it bounds
    the rate: N cores give at most N * 1000 / total runs per second.
    """
    if not cpu or not count:
        return None
    per = {name: round(cpu[name] * seconds * 1000 / count, 2) for name in ("workers", "postgres", "standin")}
    per["total"] = round(sum(per.values()), 2)
    return per


@dataclass(frozen=True)
class Tenant:
    client_id: uuid.UUID
    one_step: uuid.UUID
    three_step: uuid.UUID


class EngineBench:
    """One database, one stand-in, a growing set of workers."""

    def __init__(self, database: BenchDatabase, size: EngineSize, log_dir: Path, postmaster: int | None) -> None:
        self.database = database
        self.postmaster = postmaster
        self.size = size
        self.log_dir = log_dir
        self.key = os.urandom(32)
        self.tls = local_tls()
        self.ca_bundle = outbound_ca_bundle(self.tls) if size.ca_bundle == "certifi" else self.tls.ca_cert
        self.workers: list[subprocess.Popen[bytes]] = []
        self.standin: subprocess.Popen[bytes] | None = None
        self.standin_url = ""
        self.agent_db = Database(database.agent_dsn, PoolSettings(1, 2), name="bench-driver")
        self.intake_db = Database(database.intake_dsn, PoolSettings(1, 2), name="bench-driver")
        self.tenants: list[Tenant] = []

    # --- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        port_file = self.log_dir / f"standin-{uuid.uuid4().hex[:8]}.port"
        self.standin = start_process(["-m", "tests.bench.bench_standin", str(self.tls.server_cert),
                                      str(self.tls.server_key), str(port_file)],
                                     base_environment(), self.log_dir / "standin.log")
        port = wait_until(lambda: port_file.exists() and port_file.read_text().strip(), 20, "the stand-in to listen")
        port_file.unlink()
        self.standin_url = f"https://127.0.0.1:{port}"
        self.agent_db.open()
        self.intake_db.open()
        vault = Vault(Keyring(self.key), self.agent_db)
        hook = f"{self.standin_url}/hook"
        for index in range(self.size.clients):
            client_id = uuid.uuid4()
            with tenant_transaction(self.intake_db, client_id) as conn:
                conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s)", [client_id, f"Bench {index}"])
            connect_api_key(self.agent_db, vault, client_id=client_id, provider=PROVIDERS["webhook"],
                            api_key=Secret(secrets.token_urlsafe(32)), label="bench")
            automations = []
            for name, steps in (("One webhook", 1), ("Three webhooks", 3)):
                with tenant_transaction(self.intake_db, client_id) as conn:
                    automation_id = create_automation(conn, client_id=client_id,
                                                      definition=webhook_automation(name, hook, steps))
                    set_status(conn, automation_id=automation_id, status="enabled")
                automations.append(automation_id)
            self.tenants.append(Tenant(client_id, automations[0], automations[1]))

    def worker_environment(self) -> dict[str, str]:
        env = base_environment()
        env.update(
            AGENT_DATABASE_URL=self.database.agent_dsn,
            AGENT_SERVICE_TOKEN=new_token(),
            AGENT_ADMIN_TOKEN=new_token(),
            CREDENTIAL_ENCRYPTION_KEY=base64.b64encode(self.key).decode(),
            HAPEX_OUTBOUND_CA_BUNDLE=str(self.ca_bundle),
            WORKER_CONCURRENCY=str(self.size.concurrency),
            LOG_LEVEL="INFO",
        )
        if self.size.worker_nice is not None:
            env["WORKER_NICE"] = str(self.size.worker_nice)
        env[LOOPBACK_SWITCH] = "1"
        env["HAPEX_TEST_MODE"] = "1"  # the loopback switch is honoured only in test mode
        return env

    def grow_workers(self, count: int, *worker_args: str, wait: bool = True) -> None:
        env = self.worker_environment()
        while len(self.workers) < count:
            index = len(self.workers) + 1
            self.workers.append(start_process(["-m", "tests.bench.bench_worker", *worker_args], env,
                                              self.log_dir / f"worker-{index}.log"))
        if wait:
            self.wait_for_workers(count)

    def wait_for_workers(self, count: int) -> None:
        wait_until(lambda: self._registered_workers() >= count, 60, f"{count} workers to register")
        for process in self.workers:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with {process.returncode}; see {self.log_dir}")

    def stop(self) -> None:
        stop_processes(self.workers)
        if self.standin is not None:
            stop_processes([self.standin])
        self.agent_db.close()
        self.intake_db.close()

    # --- database reads (as the owner, outside row-level security) --------------------------

    def _owner(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database.owner_dsn, autocommit=True)

    def _registered_workers(self) -> int:
        with self._owner() as conn:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
        return int(row[0]) if row else 0

    def _runs_done(self, run_ids: list[uuid.UUID]) -> bool:
        with self._owner() as conn:
            row = conn.execute("SELECT count(*) FROM runs WHERE run_id = ANY(%s) AND status = ANY(%s)",
                               [run_ids, list(FINAL)]).fetchone()
        return bool(row and row[0] == len(run_ids))

    def _jobs_done(self, job_ids: list[int]) -> bool:
        with self._owner() as conn:
            row = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) "
                               "AND status IN ('succeeded', 'failed')", [job_ids]).fetchone()
        return bool(row and row[0] == len(job_ids))

    def _run_records(self, run_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        with self._owner() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(
                """
                SELECT r.run_id, r.status, r.error_class, extract(epoch FROM r.started_at)::float8 AS started,
                       extract(epoch FROM r.finished_at)::float8 AS finished,
                       array_agg(s.duration_ms ORDER BY s.step_index) AS durations,
                       array_agg(s.idempotency_key ORDER BY s.step_index) AS keys
                FROM runs r JOIN run_steps s ON s.client_id = r.client_id AND s.run_id = r.run_id
                WHERE r.run_id = ANY(%s)
                GROUP BY r.client_id, r.run_id
                """, [run_ids]).fetchall()

    def _job_events(self, job_ids: list[int]) -> dict[int, dict[str, float]]:
        with self._owner() as conn:
            rows = conn.execute("SELECT job_id, type::text, extract(epoch FROM at)::float8 FROM procrastinate_events "
                                "WHERE job_id = ANY(%s)", [job_ids]).fetchall()
        events: dict[int, dict[str, float]] = {}
        for job_id, kind, at in rows:
            events.setdefault(job_id, {})[kind] = at
        return events

    def _server_counters(self) -> tuple[int, int]:
        """(next transaction id, WAL position in bytes): their deltas count write transactions and WAL."""
        with self._owner() as conn:
            row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
                               "pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def connections_open(self) -> int:
        """Connections the workers hold to the database (their pools and the queue's listener)."""
        with self._owner() as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND usename = 'hapex_agent' AND application_name <> 'bench-driver'").fetchone()
        return int(row[0]) if row else 0

    def record_sizes(self) -> dict[str, Any]:
        """What the run records and the queue's rows weigh on disk (with indexes), per run kept."""
        tables = ("runs", "run_steps", "cost_events", "procrastinate_jobs", "procrastinate_events")
        with self._owner() as conn:
            runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
            sizes = {table: conn.execute("SELECT pg_total_relation_size(%s::regclass)", [table]).fetchone()[0]
                     for table in tables}
            rows = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}  # noqa: S608
        per_row = {table: round(sizes[table] / rows[table]) if rows[table] else 0 for table in tables}
        events_per_job = rows["procrastinate_events"] / rows["procrastinate_jobs"] if rows["procrastinate_jobs"] else 0

        def per_run(steps: int) -> int:
            # A webhook step records one run_steps row and one cost event; each run is one queue job.
            return round(per_row["runs"] + steps * (per_row["run_steps"] + per_row["cost_events"])
                         + per_row["procrastinate_jobs"] + events_per_job * per_row["procrastinate_events"])

        return {"runs": runs, "rows": rows, "bytes": sizes, "bytes_per_row": per_row,
                "queue_events_per_job": round(events_per_job, 2),
                "bytes_per_one_step_run": per_run(1), "bytes_per_three_step_run": per_run(3),
                "queue_share_of_one_step_run": round((per_row["procrastinate_jobs"] + events_per_job
                                                      * per_row["procrastinate_events"]) / per_run(1), 2)}

    def _standin_own_ms(self) -> dict[str, float]:
        response = requests.get(f"{self.standin_url}/__stats", verify=str(self.tls.ca_cert), timeout=30)
        response.raise_for_status()
        return dict(response.json()["own_ms"])

    # --- enqueueing ---------------------------------------------------------------------------

    def _pairs(self, count: int, steps: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        return [(t.client_id, t.one_step if steps == 1 else t.three_step)
                for t in (self.tenants[i % len(self.tenants)] for i in range(count))]

    def enqueue_runs_at_once(self, count: int, steps: int) -> tuple[list[uuid.UUID], float]:
        """Queue `count` runs through start_run in one transaction, so they appear together."""
        run_ids = []
        with self.agent_db.connection() as conn, conn.transaction():
            for client_id, automation_id in self._pairs(count, steps):
                conn.execute("SELECT set_config('app.client_id', %s, true)", [str(client_id)])
                started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
                assert started is not None and started.status == "queued"
                run_ids.append(started.run_id)
            committing = time.time()
        return run_ids, committing

    def enqueue_noops_at_once(self, count: int) -> tuple[list[int], float]:
        with self.agent_db.connection() as conn, conn.transaction():
            job_ids = [defer(conn, NOOP_TASK, queue="runs", args={"n": i}, lock=f"bench:{uuid.uuid4()}")
                       for i in range(count)]
            committing = time.time()
        return job_ids, committing

    def enqueue_runs_paced(self, count: int, steps: int, gap: float) -> tuple[list[uuid.UUID], dict[uuid.UUID, float]]:
        """One run per transaction, as the API queues them, one every `gap` seconds."""
        run_ids, enqueued = [], {}
        next_at = time.monotonic()
        for client_id, automation_id in self._pairs(count, steps):
            with tenant_transaction(self.agent_db, client_id) as conn:
                started = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual")
                committing = time.time()
            assert started is not None
            run_ids.append(started.run_id)
            enqueued[started.run_id] = committing
            next_at += gap
            time.sleep(max(0.0, next_at - time.monotonic()))
        return run_ids, enqueued

    def enqueue_noops_paced(self, count: int) -> tuple[list[int], dict[int, float]]:
        job_ids, enqueued = [], {}
        next_at = time.monotonic()
        for i in range(count):
            with self.agent_db.connection() as conn, conn.transaction():
                job_id = defer(conn, NOOP_TASK, queue="runs", args={"n": i}, lock=f"bench:{uuid.uuid4()}")
                committing = time.time()
            job_ids.append(job_id)
            enqueued[job_id] = committing
            next_at += self.size.paced_gap_seconds
            time.sleep(max(0.0, next_at - time.monotonic()))
        return job_ids, enqueued

    # --- measurements -------------------------------------------------------------------------

    def _cpu_groups(self) -> dict[str, list[int]]:
        return {"workers": [p.pid for p in self.workers], "standin": [self.standin.pid] if self.standin else [],
                "driver": [os.getpid()]}

    def warm_up(self) -> None:
        job_ids, _ = self.enqueue_noops_at_once(self.size.warm_up_runs * len(self.workers))
        run_ids, _ = self.enqueue_runs_at_once(self.size.warm_up_runs * len(self.workers), 1)
        wait_until(lambda: self._jobs_done(job_ids) and self._runs_done(run_ids), 120, "the warm-up", 0.1)
        # A database in service has statistics; a fresh one would otherwise get them from autovacuum
        # in the middle of the first measurement.
        with self._owner() as conn:
            conn.execute("VACUUM (ANALYZE)")

    def bare_queue(self) -> dict[str, Any]:
        before = bench_cpu.snapshot(self._cpu_groups(), self.postmaster)
        job_ids, committed = self.enqueue_noops_at_once(self.size.noop_jobs)
        wait_until(lambda: self._jobs_done(job_ids), 600, "the no-op jobs", 0.05)
        events = self._job_events(job_ids)
        last = max(e.get("succeeded", 0.0) for e in events.values())
        seconds = last - committed
        cpu = bench_cpu.usage(before, bench_cpu.snapshot(self._cpu_groups(), self.postmaster), seconds)
        failed = sum(1 for e in events.values() if "succeeded" not in e)
        paced_ids, enqueued = self.enqueue_noops_paced(self.size.paced_runs)
        wait_until(lambda: self._jobs_done(paced_ids), 120, "the paced no-op jobs", 0.05)
        paced = self._job_events(paced_ids)
        to_start = [(paced[j]["started"] - enqueued[j]) * 1000 for j in paced_ids if "started" in paced[j]]
        to_finish = [(paced[j]["succeeded"] - enqueued[j]) * 1000 for j in paced_ids if "succeeded" in paced[j]]
        return {
            "jobs": len(job_ids),
            "failed": failed,
            "seconds": rounded(seconds, 3),
            "jobs_per_s": rounded(rate(len(job_ids), seconds), 1),
            "enqueue_to_start_ms_p50": rounded(percentile(to_start, 50)),
            "enqueue_to_finish_ms_p50": rounded(percentile(to_finish, 50)),
            "cpu_cores": cpu,
            "cpu_ms_per_job": cpu_ms_per_item(cpu, seconds, len(job_ids)),
        }

    def burst(self, steps: int, count: int) -> dict[str, Any]:
        before = bench_cpu.snapshot(self._cpu_groups(), self.postmaster)
        run_ids, committed = self.enqueue_runs_at_once(count, steps)
        xid_before, wal_before = self._server_counters()
        wait_until(lambda: self._runs_done(run_ids), 900, f"{count} {steps}-step runs", 0.05)
        xid_after, wal_after = self._server_counters()
        records = self._run_records(run_ids)
        last = max(r["finished"] for r in records)
        seconds = last - committed
        cpu = bench_cpu.usage(before, bench_cpu.snapshot(self._cpu_groups(), self.postmaster), seconds)
        overhead = self._step_overheads(records)
        return {
            "runs": len(run_ids),
            "failed": sum(1 for r in records if r["status"] != "succeeded"),
            "failure_classes": sorted({r["error_class"] for r in records if r["error_class"]}),
            "seconds": rounded(seconds, 3),
            "runs_per_s": rounded(rate(len(run_ids), seconds), 1),
            "steps_per_s": rounded(rate(len(run_ids) * steps, seconds), 1),
            "step_overhead_ms_p50": rounded(percentile(overhead["step"], 50)),
            "step_overhead_ms_p99": rounded(percentile(overhead["step"], 99)),
            "cpu_cores": cpu,
            "cpu_ms_per_run": cpu_ms_per_item(cpu, seconds, len(run_ids)),
            # Counted from the commit of the enqueueing transaction: the workers' writes only.
            "write_transactions_per_run": rounded((xid_after - xid_before) / len(run_ids), 2),
            "wal_bytes_per_run": round((wal_after - wal_before) / len(run_ids)),
        }

    def paced(self, steps: int, runs_per_s: float | None) -> dict[str, Any]:
        gap = max(self.size.paced_gap_seconds, 1 / (LIGHT_LOAD * runs_per_s) if runs_per_s else 1.0)
        count = max(min(self.size.paced_runs, int(PACED_SECONDS_MAX / gap)), min(self.size.paced_runs, 20))
        run_ids, enqueued = self.enqueue_runs_paced(count, steps, gap)
        wait_until(lambda: self._runs_done(run_ids), 300, f"the paced {steps}-step runs", 0.05)
        records = self._run_records(run_ids)
        to_start = [(r["started"] - enqueued[r["run_id"]]) * 1000 for r in records]
        to_finish = [(r["finished"] - enqueued[r["run_id"]]) * 1000 for r in records]
        overhead = self._step_overheads(records)
        return {
            "runs": len(run_ids),
            "paced_every_ms": rounded(gap * 1000, 1),
            "failed": sum(1 for r in records if r["status"] != "succeeded"),
            "enqueue_to_start_ms_p50": rounded(percentile(to_start, 50)),
            "enqueue_to_start_ms_p99": rounded(percentile(to_start, 99)),
            "enqueue_to_finish_ms_p50": rounded(percentile(to_finish, 50)),
            "enqueue_to_finish_ms_p99": rounded(percentile(to_finish, 99)),
            "step_overhead_ms_p50": rounded(percentile(overhead["step"], 50)),
            "step_overhead_ms_p99": rounded(percentile(overhead["step"], 99)),
            "run_time_per_step_ms_p50": rounded(percentile(overhead["run_per_step"], 50)),
            "run_time_per_step_ms_p99": rounded(percentile(overhead["run_per_step"], 99)),
            "standin_own_ms_p50": rounded(percentile(overhead["standin"], 50), 3),
        }

    def _step_overheads(self, records: list[dict[str, Any]]) -> dict[str, list[float]]:
        """duration_ms minus the stand-in's own time, per step; and the run's wall time per step."""
        own = self._standin_own_ms()
        step, run_per_step, standin = [], [], []
        for record in records:
            if record["status"] != "succeeded":
                continue
            spent = 0.0
            for duration, key in zip(record["durations"], record["keys"], strict=True):
                own_ms = own.get(key)
                if own_ms is None or duration is None:
                    continue
                step.append(duration - own_ms)
                standin.append(own_ms)
                spent += own_ms
            wall_ms = (record["finished"] - record["started"]) * 1000
            run_per_step.append((wall_ms - spent) / len(record["keys"]))
        return {"step": step, "run_per_step": run_per_step, "standin": standin}


def run(server: BenchServer, size: EngineSize, log_dir: Path, progress) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every engine figure for each worker count."""
    figures: dict[str, Any] = {
        "worker_concurrency": size.concurrency,
        "clients": size.clients,
        "stand_in": "webhook.post to an asyncio HTTPS receiver on 127.0.0.1 in its own process",
        "outbound_ca_bundle": ("certifi's bundle plus the benchmark CA, as production trusts certifi"
                               if size.ca_bundle == "certifi"
                               else "the benchmark CA alone (what-if: no bundle re-read per connection)"),
        "by_workers": {},
    }
    with server.fresh_database("engine") as database:
        bench = EngineBench(database, size, log_dir, server.postmaster())
        try:
            bench.start()
            for count in size.worker_counts:
                progress(f"engine: {count} worker(s)")
                bench.grow_workers(count)
                bench.warm_up()
                result: dict[str, Any] = {"queue": bench.bare_queue()}
                result["one_step"] = bench.burst(1, size.one_step_runs)
                result["three_step"] = bench.burst(3, size.three_step_runs)
                queue_rate = result["queue"]["jobs_per_s"]
                one_rate = result["one_step"]["runs_per_s"]
                result["one_step"]["ratio_to_queue"] = (
                    rounded(one_rate / queue_rate, 3) if queue_rate and one_rate else None)
                result["database_connections"] = bench.connections_open()
                result["light_load"] = {"one_step": bench.paced(1, one_rate),
                                        "three_step": bench.paced(3, result["three_step"]["runs_per_s"])}
                figures["by_workers"][str(count)] = result
                progress(json.dumps({"workers": count, "one_step_runs_per_s": one_rate,
                                     "queue_jobs_per_s": queue_rate}))
            figures["record_sizes"] = bench.record_sizes()
        finally:
            bench.stop()
    return figures
