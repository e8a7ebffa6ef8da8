"""A year of records: the database of a busy deployment after a year, and what its queries cost on it.

Built with COPY (psycopg's copy, three tables streaming at once), not row inserts:
`--scale` runs over 10,000 clients (fewer at small scales), skewed as a real customer base
is: three clients hold a tenth of all runs each (at 10M runs, a million each), the rest share
the remainder. Each run has one to three steps and one cost event, spread over 366 days.

On it, each query of the runs, costs and automation pages and the agent's hottest ones runs
as its service role under row-level security and as the owner (no RLS) with the explicit
WHERE, alternating, timed by EXPLAIN (ANALYZE) on the server, for the largest client and for
ordinary ones; the plans go into the JSON. Then the retention prune deletes the oldest day
while runs are being written (lock hold and whether any insert waited on a lock), and the
biggest client's data export is streamed in a child process (its peak RSS).
"""

from __future__ import annotations

import json
import random
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from agent_service.config import AgentConfig
from agent_service.jobs import PRUNE_BATCH, PRUNE_BATCH_TARGET_MS, PRUNE_BATCH_TIMEOUT_MS, PruneBatch, prune_old_records
from agent_service.queue import job_values
from agent_service.runs import repository as runs
from agent_service.runs.repository import QUERIES as AGENT_RUNS
from intake.automations.repository import QUERIES as INTAKE_AUTOMATIONS
from intake.config import IntakeConfig
from shared.db import Database, tenant_transaction
from tests.bench.bench_setup import REPO_ROOT, BenchServer
from tests.bench.bench_stats import percentile, rounded

DAYS = 366
RETENTION_DAYS = 365  # so that the prune deletes the oldest day
NULL = "\\N"  # COPY text format
CAPABILITIES = ("google.gmail.search", "anthropic.summarise", "slack.post_message")


@dataclass(frozen=True)
class YearSize:
    runs: int
    clients: int
    big_clients: int
    rounds: int  # EXPLAIN ANALYZE pairs per query and kind of client

    @property
    def big_runs(self) -> int:
        return self.runs // 10

    def runs_of(self, client: int) -> int:
        """Runs of client number 1..clients: the first big_clients hold a tenth each."""
        if client <= self.big_clients:
            return self.big_runs
        rest = self.runs - self.big_clients * self.big_runs
        others = self.clients - self.big_clients
        return rest // others + (1 if client - self.big_clients <= rest % others else 0)


QUICK = YearSize(runs=10_000, clients=100, big_clients=3, rounds=5)


def size_for(scale: int, *, quick: bool) -> YearSize:
    if quick:
        return QUICK
    return YearSize(runs=scale, clients=10_000 if scale >= 1_000_000 else max(100, scale // 100), big_clients=3,
                    rounds=60 if scale < 5_000_000 else 30)


def parse_scale(text: str) -> int:
    """'1M', '10M', '250k' or a plain number of runs."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise ValueError(f"--scale must be a number of runs such as 1M or 250k, not {text!r}")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def client_uuid(c: int) -> str:
    return f"00000000-0000-4000-8000-{c:012x}"


def automation_uuid(c: int, a: int) -> str:
    return f"{c:08x}-0001-4000-8000-{a:012x}"


def run_uuid(c: int, k: int) -> str:
    return f"{c:08x}-0002-4000-8000-{k:012x}"


def automations_of(size: YearSize, client: int) -> int:
    return 20 if client <= size.big_clients else 3


# ---------------------------------------------------------------------------------------------- generation

RUN_COLUMNS = ("client_id, run_id, automation_id, automation_version, trigger_kind, scheduled_for, status, "
               "error_class, error_message, queued_at, started_at, finished_at, execution")
STEP_COLUMNS = "client_id, run_id, step_index, capability, status, attempt_count, started_at, finished_at, " \
               "duration_ms, error_class, safe_message, counts"
COST_COLUMNS = ("client_id, cost_event_id, run_id, step_index, source, provider, model, input_tokens, "
                "output_tokens, price_version, amount_microusd, occurred_at, calls")


def _timestamps(start: datetime) -> tuple[list[str], list[str]]:
    """Every day's date and every second of a day as text, so that a row's time is two lookups."""
    days = [(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(DAYS + 1)]
    seconds = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
    return days, seconds


def _client_rows(size: YearSize, start: datetime) -> Iterator[tuple[str, str, str]]:
    """(runs, steps, cost events) as COPY text, a client at a time (big clients in parts)."""
    days, seconds = _timestamps(start)
    span = DAYS * 86_400
    for c in range(1, size.clients + 1):
        cid = client_uuid(c)
        n = size.runs_of(c)
        automations = [automation_uuid(c, a) for a in range(automations_of(size, c))]
        spacing = span / max(n, 1)
        offset = (c * 7919) % max(int(spacing), 1)
        runs: list[str] = []
        steps: list[str] = []
        costs: list[str] = []
        for k in range(n):
            t = int(k * spacing) + offset
            day, second = divmod(t, 86_400)
            when = f"{days[day]} {seconds[second]}+00"
            done = f"{days[day]} {seconds[min(second + 2, 86_399)]}+00"
            rid = run_uuid(c, k)
            aid = automations[k % len(automations)]
            kind = ("schedule", "schedule", "webhook", "schedule", "manual")[k % 5]
            failed = k % 20 == 0
            scheduled = when if kind == "schedule" else NULL
            if failed:
                outcome = "failed\tprovider_error\tSlack answered 503."
            else:
                outcome = f"succeeded\t{NULL}\t{NULL}"
            runs.append(f"{cid}\t{rid}\t{aid}\t1\t{kind}\t{scheduled}\t{outcome}\t{when}\t{when}\t{done}\t1\n")
            for s in range(1 + k % 3):
                status = "failed" if failed and s == k % 3 else "succeeded"
                steps.append(f"{cid}\t{rid}\t{s}\t{CAPABILITIES[s]}\t{status}\t1\t{when}\t{done}\t{40 + k % 900}"
                             f"\t{NULL}\t{NULL}\t{{\"items\": {k % 30}}}\n")
            if k % 3 == 1:
                costs.append(f"{cid}\t{c:08x}-0003-4000-8000-{k:012x}\t{rid}\t1\tllm\tanthropic\tclaude-sonnet-5-5\t"
                             f"{900 + k % 400}\t{120 + k % 80}\t2026-11\t{3000 + k % 900}\t{when}\t1\n")
            else:
                costs.append(f"{cid}\t{c:08x}-0003-4000-8000-{k:012x}\t{rid}\t0\tprovider_call\tgoogle\t\\N\t\\N\t"
                             f"\\N\t2026-11\t0\t{when}\t1\n")
            if len(runs) >= 20_000:
                yield "".join(runs), "".join(steps), "".join(costs)
                runs, steps, costs = [], [], []
        if runs:
            yield "".join(runs), "".join(steps), "".join(costs)


# Migration 0026's backfill: the cost events' sums per client, month (UTC), source, provider and model.
ROLLUP_BACKFILL = """INSERT INTO monthly_costs
    (client_id, month, source, provider, model, events, calls, input_tokens, output_tokens,
     cache_creation_input_tokens, cache_read_input_tokens, amount_microusd)
SELECT client_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, source, provider, model, count(*),
       coalesce(sum(calls), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cache_creation_input_tokens), 0), coalesce(sum(cache_read_input_tokens), 0),
       coalesce(sum(amount_microusd), 0)
FROM cost_events
GROUP BY 1, 2, 3, 4, 5"""


def generate(dsn: str, size: YearSize, progress: Callable[[str], None]) -> dict[str, Any]:
    """Fill a migrated database with a year of records; the seconds each part took."""
    started = time.monotonic()
    start = (datetime.now(UTC) - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    # Referential checks are skipped while loading (rows are made consistent by construction).
    setup = "SET session_replication_role = replica; SET synchronous_commit = off"
    connections = [psycopg.connect(dsn, autocommit=True) for _ in range(3)]
    try:
        for conn in connections:
            conn.execute(setup)
        first = connections[0]
        with first.cursor().copy("COPY clients (client_id, name) FROM STDIN") as copy:
            copy.write("".join(f"{client_uuid(c)}\tClient {c}\n" for c in range(1, size.clients + 1)))
        trigger = '{"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/Paris"}'
        step_list = json.dumps([{"capability": "webhook.post", "inputs": {}}])
        automation_lines, version_lines = [], []
        for c in range(1, size.clients + 1):
            for a in range(automations_of(size, c)):
                automation_lines.append(f"{client_uuid(c)}\t{automation_uuid(c, a)}\tDigest {a}\tenabled\t1\t"
                                        f"{trigger}\t{step_list}\n")
                version_lines.append(f"{client_uuid(c)}\t{automation_uuid(c, a)}\t1\t{trigger}\t{step_list}\n")
        with first.cursor().copy("COPY automations (client_id, automation_id, name, status, version, trigger, steps) "
                                 "FROM STDIN") as copy:
            copy.write("".join(automation_lines))
        with first.cursor().copy("COPY automation_versions (client_id, automation_id, version, trigger, steps) "
                                 "FROM STDIN") as copy:
            copy.write("".join(version_lines))
        base = time.monotonic()
        written = 0
        with connections[0].cursor().copy(f"COPY runs ({RUN_COLUMNS}) FROM STDIN") as runs, \
                connections[1].cursor().copy(f"COPY run_steps ({STEP_COLUMNS}) FROM STDIN") as steps, \
                connections[2].cursor().copy(f"COPY cost_events ({COST_COLUMNS}) FROM STDIN") as costs:
            next_report = size.runs // 10
            for run_text, step_text, cost_text in _client_rows(size, start):
                runs.write(run_text)
                steps.write(step_text)
                costs.write(cost_text)
                written += run_text.count("\n")
                if written >= next_report:
                    progress(f"year: {written:,} runs written ({time.monotonic() - base:.0f} s)")
                    next_report += size.runs // 10
        copied = time.monotonic() - base
        # The load skipped the cost events' triggers: the monthly rollup is built as migration 0026's
        # backfill builds it.
        progress("year: monthly rollup of cost events")
        rollup_started = time.monotonic()
        first.execute(ROLLUP_BACKFILL)
        rolled_up = time.monotonic() - rollup_started
        progress("year: vacuum analyze")
        vacuum_started = time.monotonic()
        for table in ("clients", "automations", "automation_versions", "runs", "run_steps", "cost_events",
                      "monthly_costs"):
            first.execute(f"VACUUM (ANALYZE) {table}")
        vacuumed = time.monotonic() - vacuum_started
        counts = {table: int(first.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
                  for table in ("clients", "runs", "run_steps", "cost_events")}
        rollup_rows = int(first.execute("SELECT count(*) FROM monthly_costs").fetchone()[0])
        database_bytes = int(first.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    finally:
        for conn in connections:
            conn.close()
    total = time.monotonic() - started
    return {
        "rows": counts,
        "copy_seconds": round(copied, 1),
        "monthly_costs_rows": rollup_rows,
        "rollup_seconds": round(rolled_up, 1),
        "vacuum_analyze_seconds": round(vacuumed, 1),
        "seconds": round(total, 1),
        "rows_per_s": round(sum(counts.values()) / copied) if copied else None,
        "database_mb": round(database_bytes / 2**20),
    }


# ---------------------------------------------------------------------------------------------- queries

@dataclass(frozen=True)
class Query:
    """One query as its service sends it under RLS, and as the owner with the client named."""

    name: str
    role: str  # "intake" or "agent"
    rls: str
    explicit: str


def _explicit(sql: str, alias: str = "") -> str:
    """The agent's query (which leaves the client to RLS) with `client_id = %(client_id)s AND` in its WHERE."""
    prefix = f"{alias}." if alias else ""
    return sql.replace("WHERE ", f"WHERE {prefix}client_id = %(client_id)s AND ", 1)


MONTH_SPEND_EXPLICIT = """SELECT c.monthly_budget_microusd AS budget,
       coalesce((SELECT sum(m.amount_microusd) FROM monthly_costs m
                 WHERE m.client_id = %(client_id)s
                   AND m.month >= date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)
           AS spent
FROM clients c WHERE c.client_id = %(client_id)s"""


def queries() -> list[Query]:
    intake_pages = ("list_automations", "get_automation", "recent_webhook_runs", "list_runs", "get_run",
                    "list_run_steps", "run_costs", "costs_by_month", "costs_this_month", "monthly_budget")
    found = [Query(f"page.{name}", "intake", INTAKE_AUTOMATIONS[name], INTAKE_AUTOMATIONS[name])
             for name in intake_pages]
    found.append(Query("page.list_runs_of_automation", "intake", INTAKE_AUTOMATIONS["list_runs"],
                       INTAKE_AUTOMATIONS["list_runs"]))
    agent = {
        "lock_run": _explicit(AGENT_RUNS["lock_run"], "r"),
        "get_run_definition": _explicit(AGENT_RUNS["get_run_definition"], "v"),
        "recorded_steps": _explicit(AGENT_RUNS["recorded_steps"]),
        "fence_run": _explicit(AGENT_RUNS["fence_run"]),
        "retry_of_run": _explicit(AGENT_RUNS["retry_of_run"]),
    }
    found += [Query(f"agent.{name}", "agent", AGENT_RUNS[name], explicit) for name, explicit in agent.items()]
    found.append(Query("agent.month_to_date_spend", "agent", AGENT_RUNS["month_to_date_spend"],
                       MONTH_SPEND_EXPLICIT))
    return found


_TIMES = re.compile(r"(Planning|Execution) Time: ([0-9.]+) ms")


def _explain(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> tuple[float, float, list[str]]:
    """(planning + execution ms, execution ms, plan) of one EXPLAIN ANALYZE on the server."""
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, COSTS OFF) " + query, params).fetchall()
    lines = [row[0] for row in rows]
    times = {m.group(1): float(m.group(2)) for line in lines if (m := _TIMES.search(line))}
    return times.get("Planning", 0.0) + times.get("Execution", 0.0), times.get("Execution", 0.0), lines


def _prepared_ms(conn: psycopg.Connection[Any], query: str, params: dict[str, Any], times: int = 3) -> list[float]:
    """Wall milliseconds of the query as a service runs it over and over (prepared after five runs on
    a connection, unless its pool never prepares), rows fetched."""
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        conn.execute(query, params).fetchall()
        spent.append((time.perf_counter() - began) * 1000)
    return spent


def _summary(rls: list[float], explicit: list[float]) -> dict[str, Any]:
    rls_p50, explicit_p50 = statistics.median(rls), statistics.median(explicit)
    return {
        "rls_ms_p50": rounded(rls_p50, 4), "rls_ms_p99": rounded(percentile(rls, 99), 4),
        "explicit_ms_p50": rounded(explicit_p50, 4), "explicit_ms_p99": rounded(percentile(explicit, 99), 4),
        "ratio": rounded(rls_p50 / explicit_p50, 3) if explicit_p50 else None,
    }


def measure_queries(database: Any, size: YearSize, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(20)  # noqa: S311 - which clients to sample, not a secret
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    since = (month_start - timedelta(days=340)).replace(day=1)
    biggest = 1

    def params(c: int, of_automation: bool) -> dict[str, Any]:
        n = size.runs_of(c)
        k = n - 1 - rng.randrange(min(n, 500))  # a recent run, as people open them
        return {"client_id": uuid.UUID(client_uuid(c)), "run_id": uuid.UUID(run_uuid(c, k)),
                "automation_id": uuid.UUID(automation_uuid(c, 0)) if of_automation else None,
                "version": 1, "limit": 50, "seconds": 3600, "since": since}

    roles = {"intake": Database(database.intake_dsn, IntakeConfig.pool, name="bench-year-intake").open(),
             "agent": Database(database.agent_dsn, AgentConfig.pool, name="bench-year-agent").open()}
    # The owner through the same pool code and settings as each service, so that only RLS differs.
    owners = {"intake": Database(database.owner_dsn, IntakeConfig.pool, name="bench-year-owner-intake").open(),
              "agent": Database(database.owner_dsn, AgentConfig.pool, name="bench-year-owner-agent").open()}
    results: dict[str, Any] = {}
    try:
        for query in queries():
            of_automation = query.name in ("page.list_runs_of_automation", "page.get_automation",
                                           "page.recent_webhook_runs", "agent.get_run_definition")
            figures: dict[str, Any] = {}
            for kind, pick in (("largest_client", lambda: biggest),
                               ("ordinary_clients", lambda: rng.randrange(size.big_clients + 1,
                                                                          size.clients + 1))):
                rls_ms: list[float] = []
                explicit_ms: list[float] = []
                plans: dict[str, list[str]] = {}
                rls_exec: list[float] = []
                explicit_exec: list[float] = []
                rls_wall: list[float] = []
                explicit_wall: list[float] = []
                for i in range(size.rounds):
                    p = params(pick(), of_automation)
                    for rls_turn in ((True, False) if i % 2 else (False, True)):
                        if rls_turn:
                            with tenant_transaction(roles[query.role], p["client_id"]) as conn:
                                ms, execution, plans["rls"] = _explain(conn, query.rls, p)
                                rls_wall += _prepared_ms(conn, query.rls, p)
                            rls_ms.append(ms)
                            rls_exec.append(execution)
                        else:
                            with owners[query.role].transaction() as owner:
                                ms, execution, plans["explicit"] = _explain(owner, query.explicit, p)
                                explicit_wall += _prepared_ms(owner, query.explicit, p)
                            explicit_ms.append(ms)
                            explicit_exec.append(execution)
                rls_wall_p50, explicit_wall_p50 = statistics.median(rls_wall), statistics.median(explicit_wall)
                figures[kind] = {
                    **_summary(rls_ms, explicit_ms),
                    "difference_us_p50": rounded((statistics.median(rls_ms) - statistics.median(explicit_ms))
                                                 * 1000, 1),
                    "execution_ratio": rounded(statistics.median(rls_exec) / statistics.median(explicit_exec), 3)
                    if statistics.median(explicit_exec) else None,
                    "prepared_rls_ms_p50": rounded(rls_wall_p50, 4),
                    "prepared_explicit_ms_p50": rounded(explicit_wall_p50, 4),
                    "prepared_ratio": rounded(rls_wall_p50 / explicit_wall_p50, 3),
                    "rls_plan": plans["rls"], "explicit_plan": plans["explicit"]}
            results[query.name] = figures
            progress(f"year: {query.name} largest client RLS {figures['largest_client']['rls_ms_p50']} ms, "
                     f"ratio {figures['largest_client']['ratio']}, ordinary "
                     f"{figures['ordinary_clients']['ratio']}")
    finally:
        for db in (*roles.values(), *owners.values()):
            db.close()
    return results


# ---------------------------------------------------------------------------------------------- prune

def measure_prune(database: Any, size: YearSize) -> dict[str, Any]:
    """The retention prune of the oldest day while runs are written; its transactions and any lock waits."""
    agent = Database(database.agent_dsn, name="bench-year-prune").open()
    stop = threading.Event()
    insert_ms: list[float] = []
    lock_waits: list[dict[str, Any]] = []
    errors: list[str] = []

    def write_runs() -> None:
        c = size.big_clients  # one of the big clients, whose oldest runs are being deleted
        cid = uuid.UUID(client_uuid(c))
        aid = uuid.UUID(automation_uuid(c, 1))
        while not stop.is_set():
            began = time.perf_counter()
            try:
                with tenant_transaction(agent, cid) as conn:
                    rid = uuid.uuid4()
                    # As the agent starts a run: the run, its step and its job in one statement.
                    runs.queue_run(conn, capabilities=["webhook.post"], next_run_at=None,
                                   job=job_values("execute_run", queue="runs",
                                                  args={"client_id": cid, "run_id": rid}, lock=f"run:{rid}"),
                                   client_id=cid, run_id=rid, automation_id=aid, automation_version=1,
                                   trigger_kind="manual", scheduled_for=None, trigger_item=None, status="queued",
                                   error_class=None, error_message=None)
            except psycopg.Error as exc:
                errors.append(type(exc).__name__)
            insert_ms.append((time.perf_counter() - began) * 1000)
            time.sleep(0.005)

    def watch_locks(dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                for row in conn.execute("SELECT pid, wait_event, left(query, 60) FROM pg_stat_activity "
                                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"):
                    lock_waits.append({"pid": row[0], "wait_event": row[1], "query": row[2]})
                time.sleep(0.002)

    threads = [threading.Thread(target=write_runs), threading.Thread(target=watch_locks, args=(database.owner_dsn,))]
    with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
        before = owner.execute("SELECT count(*) FROM runs WHERE queued_at < now() - make_interval(days => %s)",
                               [RETENTION_DAYS]).fetchone()[0]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    batches: list[PruneBatch] = []
    deleted = 0
    try:
        # As the daily job does it: time-bound batches, one transaction each.
        deleted = prune_old_records(agent, RETENTION_DAYS, on_batch=batches.append)
    finally:
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        agent.close()
    transactions = [b.milliseconds for b in batches]
    return {
        "runs_older_than_retention": int(before),
        "batch": PRUNE_BATCH,
        "batch_target_ms": PRUNE_BATCH_TARGET_MS,
        "batch_timeout_ms": PRUNE_BATCH_TIMEOUT_MS,
        "records_deleted": deleted,
        "transactions": len(transactions),
        "cancelled_transactions": len([b for b in batches if b.cancelled]),
        "batch_sizes": {str(size): len([b for b in batches if b.size == size])
                        for size in sorted({b.size for b in batches}, reverse=True)},
        "longest_transaction_ms": rounded(max(transactions), 1),
        "transaction_ms_p50": rounded(percentile(transactions, 50), 1),
        "transaction_ms_p99": rounded(percentile(transactions, 99), 1),
        "longest_committed_transaction_ms": rounded(max((b.milliseconds for b in batches if not b.cancelled),
                                                        default=0.0), 1),
        "total_ms": rounded(sum(transactions), 1),
        "concurrent_inserts": len(insert_ms),
        "concurrent_insert_ms_p50": rounded(percentile(insert_ms, 50), 2),
        "concurrent_insert_ms_p99": rounded(percentile(insert_ms, 99), 2),
        "concurrent_insert_ms_max": rounded(max(insert_ms), 2) if insert_ms else None,
        "concurrent_insert_errors": len(errors),
        "concurrent_insert_error_kinds": sorted(set(errors)),
        "lock_waits_seen": len(lock_waits),
        "lock_wait_samples": lock_waits[:5],
    }


# ---------------------------------------------------------------------------------------------- export

def measure_export(database: Any, size: YearSize) -> dict[str, Any]:
    """The biggest client's export, streamed in a child process to /dev/null: bytes, seconds, peak RSS."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_year", "export", database.intake_dsn, client_uuid(1)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600, check=False)
    if child.returncode != 0:
        return {"error": child.stderr[-2000:]}
    figures = json.loads(child.stdout)
    figures["runs_of_the_client"] = size.runs_of(1)
    return figures


def _high_water_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _export_child(dsn: str, client_id: str) -> int:
    from intake.account_data.export import stream_export

    before = _high_water_mb()
    db = Database(dsn, name="bench-year-export").open()
    began = time.monotonic()
    cpu_began = time.process_time()
    written = 0
    with open("/dev/null", "w", encoding="utf-8") as sink:
        for chunk in stream_export(db, uuid.UUID(client_id), exported_at=datetime.now(UTC), stored_outputs=[]):
            written += len(chunk)
            sink.write(chunk)
    seconds = time.monotonic() - began
    cpu = time.process_time() - cpu_began
    db.close()
    json.dump({"bytes": written, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "mb_per_s": round(written / 2**20 / seconds, 1), "peak_rss_mb": _high_water_mb(),
               "rss_before_export_mb": before}, sys.stdout)
    return 0


# ---------------------------------------------------------------------------------------------- all

def run(server: BenchServer, size: YearSize, progress: Callable[[str], None]) -> dict[str, Any]:
    with server.fresh_database("year") as database:
        with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
            row = owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (row and row[0]):
            return {"skipped": "building the year needs a superuser owner (session_replication_role)"}
        progress(f"year: generating {size.runs:,} runs over {size.clients:,} clients")
        generation = generate(database.owner_dsn, size, progress)
        progress(f"year: generated in {generation['seconds']} s; measuring queries")
        measured = measure_queries(database, size, progress)
        progress("year: export of the largest client")
        export = measure_export(database, size)
        progress("year: retention prune")
        prune = measure_prune(database, size)
    ratios = [(figures[kind]["ratio"], name, kind) for name, figures in measured.items()
              for kind in ("largest_client", "ordinary_clients") if figures[kind]["ratio"] is not None]
    worst = max(ratios) if ratios else (None, None, None)
    prepared = [(figures[kind]["prepared_ratio"], name, kind) for name, figures in measured.items()
                for kind in ("largest_client", "ordinary_clients")]
    worst_prepared = max(prepared) if prepared else (None, None, None)
    return {
        "runs": size.runs,
        "clients": size.clients,
        "largest_client_runs": size.runs_of(1),
        "big_clients": size.big_clients,
        "rounds": size.rounds,
        "generation": generation,
        "queries": measured,
        "worst_ratio": worst[0],
        "worst_query": f"{worst[1]} ({worst[2]})" if worst[1] else None,
        "worst_difference_us": max(figures[kind]["difference_us_p50"] for figures in measured.values()
                                   for kind in ("largest_client", "ordinary_clients")),
        "worst_prepared_ratio": worst_prepared[0],
        "worst_prepared_query": f"{worst_prepared[1]} ({worst_prepared[2]})" if worst_prepared[1] else None,
        "slowest_largest_client_p99_ms": max((f["largest_client"]["rls_ms_p99"] for f in measured.values()),
                                             default=None),
        "prune": prune,
        "export": export,
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "export":
        sys.exit(_export_child(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m tests.bench.bench_year export DSN CLIENT_ID")
