"""`make bench` / `python -m tests.bench [--quick]`: every benchmark, a table, and .data/bench/latest.json.

--quick (or BENCH_QUICK=1) runs each benchmark tiny, to prove the harness works in well
under a minute; its figures mean little. The full run takes several minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import (
    bench_chat,
    bench_commits,
    bench_engine,
    bench_intake,
    bench_isolation,
    bench_polls,
    bench_rush,
    bench_vault,
    bench_year,
)
from tests.bench.bench_setup import BENCH_DIR, BenchServer, git_commit, git_dirty

BENCHMARKS = ("engine", "intake", "isolation", "vault", "commits", "rush", "polls", "chat", "year")

# The targets for this 2-core machine: (label, where in the report, comparison, bound, unit).
TARGETS: tuple[tuple[str, tuple[str, ...], str, float, str], ...] = (
    ("per-step overhead p50, 2 workers, light load",
     ("engine", "by_workers", "2", "light_load", "one_step", "step_overhead_ms_p50"), "<=", 5, "ms"),
    ("per-step overhead p99, 2 workers, light load",
     ("engine", "by_workers", "2", "light_load", "one_step", "step_overhead_ms_p99"), "<=", 20, "ms"),
    ("enqueue-to-start p50, 2 workers",
     ("engine", "by_workers", "2", "light_load", "one_step", "enqueue_to_start_ms_p50"), "<=", 10, "ms"),
    ("one-step runs/s, 2 workers", ("engine", "by_workers", "2", "one_step", "runs_per_s"), ">=", 300, "/s"),
    ("engine / bare queue throughput, 2 workers",
     ("engine", "by_workers", "2", "one_step", "ratio_to_queue"), ">=", 0.6, "x"),
    ("RLS / explicit WHERE, worst query", ("isolation", "worst_ratio"), "<=", 1.05, "x"),
    ("intake signed-in page requests/s", ("intake", "page", "requests_per_s"), ">=", 500, "/s"),
    ("intake signed-in page p99", ("intake", "page", "latency_ms_p99"), "<", 50, "ms"),
    ("08:00 rush: minute to last run started (10,000 schedules, 2 workers)",
     ("rush", "minute_to_last_start_s"), "<=", 60, "s"),
    ("08:00 rush: slots fired twice", ("rush", "doubled"), "<=", 0, ""),
    ("08:00 rush: slots not fired", ("rush", "missed"), "<=", 0, ""),
    ("08:00 rush: intake signed-in page p99 meanwhile", ("rush", "intake_during_rush", "latency_ms_p99"),
     "<", 100, "ms"),
    ("ten-turn chat: cost with prompt caching / without", ("chat", "after_to_before"), "<", 1, "x"),
    ("poll cycle: new items doubled", ("polls", "doubled"), "<=", 0, ""),
    ("poll cycle: new items missed", ("polls", "missed"), "<=", 0, ""),
    ("a year of records: RLS / explicit WHERE, worst page or agent query and client", ("year", "worst_ratio"),
     "<=", 1.05, "x"),
    ("a year of records: RLS / explicit WHERE as the services run them (prepared, wall), worst",
     ("year", "worst_prepared_ratio"), "<=", 1.05, "x"),
    ("a year of records: prune's longest transaction (lock hold)", ("year", "prune", "longest_transaction_ms"),
     "<=", 100, "ms"),
    ("a year of records: run inserts that waited on a lock during the prune", ("year", "prune", "lock_waits_seen"),
     "<=", 0, ""),
    ("a year of records: export of the largest client, peak RSS", ("year", "export", "peak_rss_mb"), "<=", 200, "MB"),
)


def _dig(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for label, path, comparison, bound, unit in TARGETS:
        value = _dig(report, path)
        met = None
        if isinstance(value, int | float):
            met = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[comparison]
        checks.append({"target": label, "value": value, "bound": f"{comparison} {bound} {unit}", "met": met})
    return checks


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _niceness(processes: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{name} {n.get('process')}/{n.get('session_group')}" for name, n in processes.items())


def print_table(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"\nHapex benchmarks  commit {report['commit'][:12]}{' (dirty)' if report['dirty'] else ''}  "
              f"{report['cores']} cores  {'QUICK (figures mean little)' if report['quick'] else 'full'}\n")
    engine = report.get("engine") or {}
    if engine.get("by_workers"):
        out.write("\nRun engine (webhook.post to a loopback stand-in; WORKER_CONCURRENCY="
                  f"{engine.get('worker_concurrency')} per process)\n")
        head = ("workers", "queue jobs/s", "1-step runs/s", "vs queue", "3-step runs/s", "3-step steps/s",
                "enq>start p50", "enq>finish p50/p99", "step overhead p50/p99")
        out.write(" | ".join(head) + "\n")
        for count, figures in engine["by_workers"].items():
            light = figures["light_load"]["one_step"]
            row = (count, figures["queue"]["jobs_per_s"], figures["one_step"]["runs_per_s"],
                   figures["one_step"]["ratio_to_queue"], figures["three_step"]["runs_per_s"],
                   figures["three_step"]["steps_per_s"], light["enqueue_to_start_ms_p50"],
                   f"{_cell(light['enqueue_to_finish_ms_p50'])}/{_cell(light['enqueue_to_finish_ms_p99'])}",
                   f"{_cell(light['step_overhead_ms_p50'])}/{_cell(light['step_overhead_ms_p99'])}")
            out.write(" | ".join(_cell(v) for v in row) + "\n")
    intake = report.get("intake") or {}
    if intake.get("page"):
        out.write(f"\nIntake ({intake['load_generator']}, {intake['connections']} keep-alive TLS connections)\n")
        for name in ("healthz", "page"):
            f = intake[name]
            label = "/healthz" if name == "healthz" else f"{intake['page_path']} (signed in)"
            out.write(f"{label}: {_cell(f['requests_per_s'])} req/s, p50 {_cell(f['latency_ms_p50'])} ms, "
                      f"p99 {_cell(f['latency_ms_p99'])} ms, errors {f['errors']}\n")
    isolation = report.get("isolation") or {}
    if isolation.get("queries"):
        out.write(f"\nIsolation ({isolation['clients']} clients, {isolation['rows']:,} runs; "
                  "EXPLAIN ANALYZE planning+execution, median)\n")
        for name, q in isolation["queries"].items():
            out.write(f"{name}: RLS {_cell(q['rls_ms_p50'])} ms, explicit WHERE {_cell(q['explicit_ms_p50'])} ms, "
                      f"ratio {_cell(q['ratio'])}\n")
    rush = report.get("rush") or {}
    if rush.get("slots"):
        alone = rush["scheduler_alone"]
        intake_load = rush["intake_during_rush"]
        out.write(f"\n08:00 rush ({rush['schedules']:,} schedules due at one moment over {rush['clients']} clients, "
                  f"{rush['workers']} workers x {rush['worker_concurrency']}, niceness process/session group "
                  f"{_niceness(rush.get('niceness') or {})})\n")
        out.write(f"minute to last run started {_cell(rush['minute_to_last_start_s'])} s; lateness p50 "
                  f"{_cell(rush['lateness_s_p50'])} / p99 {_cell(rush['lateness_s_p99'])} / max "
                  f"{_cell(rush['lateness_s_max'])} s; slots {rush['slots']:,}, doubled {rush['doubled']}, missed "
                  f"{rush['missed']}, second tick started {rush['runs_started_by_a_second_tick']}\n")
        out.write(f"scheduler: {_cell(rush['scheduler_seconds'])} s for the rush, its CPU "
                  f"{_cell(rush['scheduler_cpu_s'])} s, {rush['scheduler_transactions']} transactions, longest "
                  f"{_cell(rush['scheduler_longest_transaction_ms'])} ms; alone (workers stopped): "
                  f"{_cell(alone['slots_per_s'])} slots/s, CPU per slot {_cell(alone['cpu_ms_per_slot']['scheduler'])}"
                  f" + {_cell(alone['cpu_ms_per_slot']['postgres'])} ms (PostgreSQL)\n")
        out.write(f"intake meanwhile ({intake_load['connections']} connections): "
                  f"{_cell(intake_load['requests_per_s'])} req/s, p50 {_cell(intake_load['latency_ms_p50'])} ms, "
                  f"p99 {_cell(intake_load['latency_ms_p99'])} ms, errors {intake_load['errors']}\n")
    polls = report.get("polls") or {}
    if polls.get("empty_cycle"):
        out.write(f"\nPoll cycle ({polls['automations']:,} Gmail poll automations over {polls['clients']} clients, "
                  f"{polls['threads']} poller threads, loopback stand-in)\n")
        for name, label in (("first_cycle_takes_the_state", "first (takes the state)"),
                            ("cycle_with_one_new_email_each", "one new email each"), ("empty_cycle", "nothing new")):
            f = polls[name]
            cpu = f["cpu_ms_per_poll"]
            out.write(f"{label}: {_cell(f['polls_per_s'])} polls/s, CPU per poll {_cell(cpu['poller'])} + "
                      f"{_cell(cpu['postgres'])} ms (PostgreSQL), runs started {f['runs_started']}\n")
        out.write(f"automations with the new email missed {polls['missed']}, doubled {polls['doubled']}\n")
    year = report.get("year") or {}
    if year.get("queries"):
        generation = year["generation"]
        out.write(f"\nA year of records ({year['runs']:,} runs over {year['clients']:,} clients, the largest "
                  f"{year['largest_client_runs']:,}; {sum(generation['rows'].values()):,} rows by COPY in "
                  f"{_cell(generation['copy_seconds'])} s + vacuum {_cell(generation['vacuum_analyze_seconds'])} s, "
                  f"{generation['database_mb']:,} MB)\n")
        out.write("query: for the largest client | ordinary clients: RLS p50/p99 ms (EXPLAIN ANALYZE), ratio to "
                  "explicit WHERE, difference us; prepared as the service runs it: ratio\n")
        for name, q in year["queries"].items():
            cells = [f"{_cell(f['rls_ms_p50'])}/{_cell(f['rls_ms_p99'])}, {_cell(f['ratio'])}, "
                     f"{_cell(f['difference_us_p50'])} us; {_cell(f['prepared_ratio'])}"
                     for f in (q["largest_client"], q["ordinary_clients"])]
            out.write(f"{name}: {cells[0]} | {cells[1]}\n")
        prune, export = year["prune"], year["export"]
        out.write(f"prune of the oldest day ({prune['runs_older_than_retention']:,} runs): "
                  f"{prune['records_deleted']:,} runs and cost events in {prune['transactions']} transactions "
                  f"of at most {prune['batch']} ({prune['cancelled_transactions']} cancelled at "
                  f"{prune['batch_timeout_ms']} ms), p50 {_cell(prune['transaction_ms_p50'])} ms, "
                  f"longest {_cell(prune['longest_transaction_ms'])} ms; {prune['concurrent_inserts']} run inserts "
                  f"meanwhile p99 {_cell(prune['concurrent_insert_ms_p99'])} ms max "
                  f"{_cell(prune['concurrent_insert_ms_max'])} ms, lock waits seen {prune['lock_waits_seen']}\n")
        if "error" in export:
            out.write(f"export: failed ({export['error'][-300:]})\n")
        else:
            out.write(f"export of the largest client: {export['bytes'] / 2**20:,.0f} MB in "
                      f"{_cell(export['seconds'])} s, peak RSS {_cell(export['peak_rss_mb'])} MB "
                      f"(before {_cell(export['rss_before_export_mb'])})\n")
    chat = report.get("chat") or {}
    if chat.get("before"):
        out.write(f"\nTen-turn build chat on {chat['model']} (stand-in counting usage as the API does): "
                  f"{_cell(chat['before']['microusd'] / 1e6)} USD without prompt caching, "
                  f"{_cell(chat['after']['microusd'] / 1e6)} USD with it ({_cell(chat['after_to_before'])} x)\n")
    vault = report.get("vault") or {}
    if vault:
        out.write(f"\nVault (200-byte token, one core): {_cell(vault['encrypt_per_s'])} encryptions/s, "
                  f"{_cell(vault['decrypt_per_s'])} decryptions/s\n")
    commits = report.get("commits") or {}
    if commits:
        out.write(f"\nPostgreSQL commits/s: {_cell(commits['commits_per_s_1_connection'])} from 1 connection, "
                  f"{_cell(commits['commits_per_s_8_connections'])} from 8\n")
    out.write("\nTargets\n")
    for check in report["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
        out.write(f"  {mark:6} {check['target']}: {_cell(check['value'])} (target {check['bound']})\n")
    out.flush()


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description="Hapex benchmarks.")
    parser.add_argument("--quick", action="store_true", help="a tiny run that proves the harness works")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only these (repeatable)")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "latest.json")
    parser.add_argument("--nice", type=int, default=None,
                        help="run the benchmark and its PostgreSQL at this niceness (negative needs root), so that "
                             "other work on a shared machine takes less of the cores; recorded in the output")
    parser.add_argument("--rush-schedules", type=int, default=None,
                        help="schedules due at once in the 08:00 rush (default 10,000; 100 with --quick)")
    parser.add_argument("--scale", type=bench_year.parse_scale, default=bench_year.parse_scale("1M"),
                        help="runs in the year of records (1M by default, 10M as the issue's year; tiny with --quick)")
    parser.add_argument("--worker-nice", type=int, choices=range(20), default=None, metavar="0-19",
                        help="WORKER_NICE for the rush's workers and scheduler (default: the product's, 10); "
                             "0 to compare with workers level with the intake")
    parser.add_argument("--huge-rush", action="store_true", help="the 08:00 rush with 50,000 schedules")
    parser.add_argument("--ca-bundle", choices=("certifi", "standin"), default="certifi",
                        help="what the workers trust outbound: certifi's bundle plus the stand-in's CA (as in "
                             "production), or the stand-in's CA alone (a what-if without the bundle's cost)")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    selected = args.only or list(BENCHMARKS)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    log_dir = args.output.parent / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    started = time.monotonic()
    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "dirty": git_dirty(),
        "cores": os.cpu_count(),
        "quick": quick,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": _load_average()},
    }
    server = BenchServer.start()
    if args.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every process the benchmarks start
        except OSError:
            server.stop()
            parser.error("--nice below 0 needs root")
        report["machine"]["niceness"] = args.nice
        server.renice(args.nice)
    try:
        report["postgres"] = {"embedded": server.embedded, **server.settings()}
        if "vault" in selected:
            progress("vault")
            report["vault"] = bench_vault.run(0.2 if quick else 2.0)
        if "commits" in selected:
            progress("commits")
            report["commits"] = bench_commits.run(server, seconds=0.5 if quick else 3.0)
        if "isolation" in selected:
            progress("isolation")
            report["isolation"] = bench_isolation.run(server, clients=100, per_client=50 if quick else 1000,
                                                      rounds=10 if quick else 500)
        if "intake" in selected:
            progress("intake")
            report["intake"] = bench_intake.run(server, seconds=1.0 if quick else 10.0, connections=16,
                                                log_dir=log_dir)
        if "chat" in selected:
            progress("chat")
            report["chat"] = bench_chat.run(log_dir)
        if "rush" in selected:
            rush = bench_rush.QUICK if quick else bench_rush.HUGE if args.huge_rush else bench_rush.FULL
            if args.rush_schedules:
                rush = dataclasses.replace(rush, schedules=args.rush_schedules)
            if args.worker_nice is not None:
                rush = dataclasses.replace(rush, worker_nice=args.worker_nice)
            report["rush"] = bench_rush.run(server, rush, log_dir, progress)
        if "polls" in selected:
            progress("polls")
            report["polls"] = bench_polls.run(server, bench_polls.QUICK if quick else bench_polls.FULL, log_dir,
                                              progress)
        if "year" in selected:
            report["year"] = bench_year.run(server, bench_year.size_for(args.scale, quick=quick), progress)
        if "engine" in selected:
            size = dataclasses.replace(bench_engine.QUICK if quick else bench_engine.FULL, ca_bundle=args.ca_bundle)
            report["engine"] = bench_engine.run(server, size, log_dir, progress)
    finally:
        if args.nice is not None:
            server.renice(0)
        server.stop()
    report["machine"]["load_average_at_end"] = _load_average()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["targets"] = evaluate_targets(report)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nbench: wrote {args.output} in {report['seconds']} s (logs in {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
