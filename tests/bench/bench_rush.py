"""The 08:00 rush: thousands of enabled schedules due in the same minute.

On one fresh database: `schedules` one-step webhook.post automations spread over `clients`
clients, each scheduled for the same minute (the rush minute, just past), 2 worker processes
(`hapex serve worker`, WORKER_CONCURRENCY 4) and the loopback stand-in, and the intake
(gunicorn, as `make run`) serving a signed-in page to a light steady load all along.

The scheduler itself (agent_service.runs.scheduler.fire_due_schedules, the code the
`fire_due_schedules` job runs once a minute in a worker) runs at the rush minute in a process of
its own started as the workers are (tests/bench/bench_rush_scheduler.py: its own session, the
workers' environment and so their CPU priority, WORKER_NICE), so that its CPU and its
transactions are its own to measure; the workers do what they do in production, take and
execute the runs. Then the same function is called again for the same minute, as a second
worker's late tick would, and must start nothing.

Reported: the time from the minute to the last run started, each run's lateness (started_at
minus its scheduled_for) p50/p99/max, the scheduler's CPU (its process, and PostgreSQL's share
while it ran), its longest transaction, slots doubled or missed, and the intake's p99 meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agent_service.runs import scheduler
from shared.config import PoolSettings
from shared.db import Database
from tests.bench import bench_cpu, bench_intake
from tests.bench.bench_engine import EngineBench, EngineSize
from tests.bench.bench_setup import REPO_ROOT, BenchServer, stop_processes, wait_until
from tests.bench.bench_stats import percentile, rounded


@dataclass(frozen=True)
class RushSize:
    schedules: int
    clients: int
    workers: int = 2
    concurrency: int = 4
    # The intake meanwhile: this many people, each loading the signed-in page every intake_gap_ms.
    intake_connections: int = 4
    intake_gap_ms: float = 100.0
    # Slots fired with the workers stopped, to measure the scheduler's own cost.
    alone: int = 2000
    # The workers' (and the rush's scheduler's) WORKER_NICE; None: the product's default.
    worker_nice: int | None = None


QUICK = RushSize(schedules=100, clients=2, alone=50)
FULL = RushSize(schedules=10_000, clients=100)
HUGE = RushSize(schedules=50_000, clients=100)


class TimedTransactions:
    """Wraps the scheduler's database so that every transaction it opens is timed, commit included."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seconds: list[float] = []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        began = time.perf_counter()
        with self.db.transaction() as conn:
            yield conn
        self.seconds.append(time.perf_counter() - began)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """tenant_transaction's way in: one connection, one transaction, from checkout to commit."""
        began = time.perf_counter()
        with self.db.connection() as conn:
            yield conn
        self.seconds.append(time.perf_counter() - began)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def _add_schedules(owner_dsn: str, templates: list[tuple[uuid.UUID, uuid.UUID]], count: int,
                   minute: datetime, prefix: str) -> None:
    """`count` enabled schedules copied from the clients' one-step automations, all due at `minute`."""
    trigger = {"kind": "schedule", "cron": f"{minute.minute} {minute.hour} * * *", "timezone": "UTC"}
    per, extra = divmod(count, len(templates))
    with psycopg.connect(owner_dsn) as conn:
        for index, (client_id, automation_id) in enumerate(templates):
            copies = per + (1 if index < extra else 0)
            if not copies:
                continue
            conn.execute(
                """
                WITH made AS (
                    INSERT INTO automations (client_id, automation_id, name, status, version, trigger, steps,
                                             next_run_at)
                    SELECT a.client_id, gen_random_uuid(), %(prefix)s || ' ' || g, 'enabled', 1, %(trigger)s, a.steps,
                           %(minute)s
                    FROM automations a, generate_series(1, %(copies)s) g
                    WHERE a.automation_id = %(template)s
                    RETURNING client_id, automation_id, trigger, steps)
                INSERT INTO automation_versions (client_id, automation_id, version, trigger, steps)
                SELECT client_id, automation_id, 1, trigger, steps FROM made
                """, {"trigger": Jsonb(trigger), "minute": minute, "copies": copies, "template": automation_id,
                   "prefix": prefix})
        conn.execute("ANALYZE automations")


def _scheduler_alone(owner_dsn: str, scheduler_db: Database, bench: EngineBench, server: BenchServer,
                     templates: list[tuple[uuid.UUID, uuid.UUID]], count: int) -> dict[str, Any]:
    """The scheduler's own cost: `count` slots fired with the workers stopped (SIGSTOP), so that
    PostgreSQL's CPU meanwhile is the scheduler's; then the workers go on and drain those runs."""
    slot = datetime.now(UTC) - timedelta(seconds=1)
    _add_schedules(owner_dsn, templates, count, slot, "Alone")
    timed = TimedTransactions(scheduler_db)
    for worker in bench.workers:
        os.kill(worker.pid, signal.SIGSTOP)
    try:
        before = bench_cpu.snapshot({"scheduler": [os.getpid()]}, server.postmaster())
        cpu_began, began = time.process_time(), time.monotonic()
        started = scheduler.fire_due_schedules(SimpleNamespace(db=timed), datetime.now(UTC))  # type: ignore[arg-type]
        cpu = time.process_time() - cpu_began
        seconds = time.monotonic() - began
        usage = bench_cpu.usage(before, bench_cpu.snapshot({"scheduler": [os.getpid()]}, server.postmaster()),
                                seconds) or {}
    finally:
        for worker in bench.workers:
            os.kill(worker.pid, signal.SIGCONT)
    wait_until(lambda: _finished(owner_dsn, slot) >= count, 1800, "the scheduler-alone runs to finish", 0.2)
    postgres_ms = (usage.get("postgres") or 0.0) * seconds * 1000 / max(started, 1)
    return {
        "slots": count, "started": started, "seconds": rounded(seconds, 2),
        "slots_per_s": rounded(started / seconds, 1) if seconds else None,
        "cpu_ms_per_slot": {"scheduler": rounded(cpu * 1000 / max(started, 1), 3),
                            "postgres": rounded(postgres_ms, 3),
                            "total": rounded(cpu * 1000 / max(started, 1) + postgres_ms, 3)},
        "everything_else_cores": usage.get("everything_else"),
        "transactions": len(timed.seconds),
        "transaction_ms_p50": rounded(percentile([s * 1000 for s in timed.seconds], 50), 2),
        "longest_transaction_ms": rounded(max(timed.seconds, default=0.0) * 1000, 2),
    }


def _slot_counts(owner_dsn: str, minute: datetime) -> dict[str, Any]:
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute(
            """
            SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1), count(*)
            FROM (SELECT a.automation_id, count(r.run_id) AS n
                  FROM automations a
                  LEFT JOIN runs r ON r.automation_id = a.automation_id AND r.scheduled_for = %(minute)s
                  WHERE a.name LIKE 'Rush %%' GROUP BY a.automation_id) per_slot
            """, {"minute": minute}).fetchone()
    assert row is not None
    return {"slots": int(row[2]), "missed": int(row[0]), "doubled": int(row[1])}


def _started(owner_dsn: str, minute: datetime) -> tuple[int, int]:
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE started_at IS NOT NULL), count(*) FROM runs "
                           "WHERE scheduled_for = %s", [minute]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _finished(owner_dsn: str, minute: datetime) -> int:
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE scheduled_for = %s AND status IN "
                           "('succeeded', 'failed', 'cancelled')", [minute]).fetchone()
    return int(row[0]) if row else 0


def _lateness(owner_dsn: str, minute: datetime) -> tuple[list[float], float | None, int]:
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute("SELECT extract(epoch FROM started_at - scheduled_for)::float8, status FROM runs "
                            "WHERE scheduled_for = %s AND started_at IS NOT NULL", [minute]).fetchall()
    late = [float(r[0]) for r in rows]
    failed = sum(1 for r in rows if r[1] == "failed")
    return late, max(late) if late else None, failed


def _niceness(pids: list[int]) -> list[dict[str, int | None]]:
    """Each process's niceness and its session group's (autogroup; None where the kernel has none): a
    process niceness counts against its own group's processes, the group's against other groups."""
    found: list[dict[str, int | None]] = []
    for pid in pids:
        entry: dict[str, int | None] = {"process": None, "session_group": None}
        with contextlib.suppress(OSError):
            entry["process"] = os.getpriority(os.PRIO_PROCESS, pid)
        with contextlib.suppress(OSError, ValueError, IndexError):
            entry["session_group"] = int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
        found.append(entry)
    return found


def _start_scheduler_process(bench: EngineBench, schedules: int, log_dir: Path) -> subprocess.Popen[str]:
    """The rush's scheduler process (bench_rush_scheduler), started as a worker is, connected and waiting."""
    with open(log_dir / "rush-scheduler.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_rush_scheduler", str(schedules)],
                                   env=bench.worker_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=log, text=True, start_new_session=True, cwd=REPO_ROOT)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        stop_processes([process])
        raise RuntimeError(f"the rush's scheduler did not start; see {log_dir}/rush-scheduler.log")
    return process


def _scheduler_result(process: subprocess.Popen[str], log_dir: Path) -> dict[str, Any]:
    """Start the scheduler's minute calls; what it reports once every slot has started."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the rush's scheduler failed; see {log_dir}/rush-scheduler.log")
    return dict(json.loads(line))


def run(server: BenchServer, size: RushSize, log_dir: Path, progress) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    engine_size = EngineSize(noop_jobs=0, one_step_runs=0, three_step_runs=0, paced_runs=0, paced_gap_seconds=0.0,
                             clients=size.clients, worker_counts=(size.workers,), concurrency=size.concurrency,
                             warm_up_runs=3, ca_bundle="certifi", worker_nice=size.worker_nice)
    figures: dict[str, Any] = {"schedules": size.schedules, "clients": size.clients, "workers": size.workers,
                               "worker_concurrency": size.concurrency,
                               "scheduler": "fire_due_schedules in a process started as a worker, at the minute"}
    with server.fresh_database("rush") as database:
        bench = EngineBench(database, engine_size, log_dir, server.postmaster())
        scheduler_db = Database(database.agent_dsn, PoolSettings(1, 4), name="bench-scheduler")
        try:
            progress(f"rush: {size.schedules} schedules over {size.clients} clients")
            bench.start()
            bench.grow_workers(size.workers, "--no-scheduler", wait=False)  # they start while the intake does
            with bench_intake.serving(server, database, log_dir) as intake:
                bench.wait_for_workers(size.workers)
                bench.warm_up()
                templates = [(t.client_id, t.one_step) for t in bench.tenants]
                scheduler_db.open()
                figures["scheduler_alone"] = _scheduler_alone(database.owner_dsn, scheduler_db, bench, server,
                                                              templates, size.alone)
                progress(json.dumps({"rush_scheduler_alone": figures["scheduler_alone"]}))
                _add_schedules(database.owner_dsn, templates, size.schedules, datetime.now(UTC) + timedelta(days=1),
                               "Rush")
                rush_scheduler = _start_scheduler_process(bench, size.schedules, log_dir)
                try:
                    figures["niceness"] = dict(zip(
                        ("scheduler", *(f"worker {n}" for n in range(1, size.workers + 1))),
                        _niceness([rush_scheduler.pid, *(p.pid for p in bench.workers)]), strict=True))
                    # "The minute": every schedule's next_run_at, a moment just ahead (a real rush is on the
                    # minute; any instant does, and the benchmark need not wait for the clock's next minute).
                    minute = datetime.now(UTC) + timedelta(seconds=2 if size.schedules > 1000 else 0.5)
                    with psycopg.connect(database.owner_dsn) as conn:
                        conn.execute("UPDATE automations SET next_run_at = %s WHERE name LIKE 'Rush %%'", [minute])
                    time.sleep(max(0.0, minute.timestamp() - time.time()))
                    load: dict[str, Any] = {}
                    stop_load = threading.Event()
                    loader = threading.Thread(target=lambda: load.update(intake.load_until(
                        stop_load, size.intake_connections, size.intake_gap_ms)), daemon=True)
                    loader.start()
                    try:
                        groups = {"workers": [p.pid for p in bench.workers], "scheduler": [rush_scheduler.pid]}
                        before = bench_cpu.snapshot(groups, server.postmaster())
                        began = time.time()
                        # As the periodic job: one call a minute until every slot is started (one, since
                        # SCHEDULER_BUDGET_SECONDS lets a call go on for most of its minute).
                        scheduled = _scheduler_result(rush_scheduler, log_dir)
                        during = bench_cpu.usage(before, bench_cpu.snapshot(groups, server.postmaster()),
                                                 time.time() - began)
                        started, ticks, scheduler_cpu = scheduled["started"], scheduled["ticks"], scheduled["cpu_s"]
                        scheduler_seconds, transaction_s = scheduled["seconds"], scheduled["transaction_s"]
                        wait_until(lambda: _started(database.owner_dsn, minute)[0] >= size.schedules, 1800,
                                   "every rush run to start", 0.2)
                    finally:
                        stop_load.set()
                        loader.join()
                finally:
                    stop_processes([rush_scheduler])
                runtime = SimpleNamespace(db=scheduler_db)
                again = scheduler.fire_due_schedules(runtime, datetime.now(UTC))  # type: ignore[arg-type]
            late, latest, failed = _lateness(database.owner_dsn, minute)
            wait_until(lambda: _finished(database.owner_dsn, minute) >= size.schedules, 1800,
                       "every rush run to finish", 0.2)
            figures.update({
                "runs_started_by_scheduler": started,
                "scheduler_ticks": ticks,
                "runs_started_by_a_second_tick": again,
                **_slot_counts(database.owner_dsn, minute),
                "failed_runs": failed,
                "minute_to_last_start_s": rounded(latest, 2),
                "lateness_s_p50": rounded(percentile(late, 50), 2),
                "lateness_s_p99": rounded(percentile(late, 99), 2),
                "lateness_s_max": rounded(latest, 2),
                "scheduler_seconds": rounded(scheduler_seconds, 2),
                "scheduler_cpu_s": rounded(scheduler_cpu, 2),
                "scheduler_cpu_ms_per_slot": rounded(scheduler_cpu * 1000 / max(started, 1), 3),
                "postgres_cores_while_scheduling": (during or {}).get("postgres"),
                "workers_cores_while_scheduling": (during or {}).get("workers"),
                "everything_else_cores_while_scheduling": (during or {}).get("everything_else"),
                "scheduler_cores_while_scheduling": (during or {}).get("scheduler"),
                "scheduler_transactions": len(transaction_s),
                "scheduler_transaction_ms_p50": rounded(percentile([s * 1000 for s in transaction_s], 50), 2),
                "scheduler_transaction_ms_p99": rounded(percentile([s * 1000 for s in transaction_s], 99), 2),
                "scheduler_longest_transaction_ms": rounded(max(transaction_s, default=0.0) * 1000, 2),
                "intake_during_rush": load,
            })
        finally:
            scheduler_db.close()
            bench.stop()
    return figures
