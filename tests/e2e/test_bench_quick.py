"""`make bench ARGS=--quick` works end to end and reports every figure; nothing here is timed.

The quick benchmark runs as its own process against the tests' PostgreSQL server (through
BENCH_DATABASE_URL), with real worker processes, gunicorn over TLS and the loopback stand-in.
The figures of such a tiny run mean little, so the test checks that each one is there and
that every run and request it made succeeded, never how fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from numbers import Number

from tests.conftest import REPO_ROOT

ENGINE_BURST = ("runs", "failed", "seconds", "runs_per_s", "steps_per_s", "step_overhead_ms_p50",
                "step_overhead_ms_p99", "write_transactions_per_run", "wal_bytes_per_run")
ENGINE_PACED = ("enqueue_to_start_ms_p50", "enqueue_to_start_ms_p99", "enqueue_to_finish_ms_p50",
                "enqueue_to_finish_ms_p99", "step_overhead_ms_p50", "step_overhead_ms_p99",
                "run_time_per_step_ms_p50", "run_time_per_step_ms_p99", "standin_own_ms_p50")
LOAD = ("requests", "errors", "requests_per_s", "latency_ms_p50", "latency_ms_p99")


def numbers(figures: dict, names: tuple[str, ...]) -> dict:
    """Every named figure, each a number; the missing or empty ones are what the assertion shows."""
    return {name: figures.get(name) for name in names if not isinstance(figures.get(name), Number)}


def test_the_quick_benchmark_reports_every_figure_of_every_benchmark(pg_server, tmp_path):
    output = tmp_path / "latest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_"))}
    env["BENCH_DATABASE_URL"] = pg_server
    finished = subprocess.run([sys.executable, "-m", "tests.bench", "--quick", "--output", str(output)],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert "Targets" in finished.stdout and "wrote" in finished.stdout
    report = json.loads(output.read_text())

    assert re.fullmatch(r"[0-9a-f]{40}", report["commit"])
    assert report["cores"] == os.cpu_count() and report["quick"] is True
    assert report["timestamp"] and report["postgres"]["server_version"]

    engine = report["engine"]["by_workers"]
    assert sorted(engine, key=int) == ["1", "2", "4"]
    for count, figures in engine.items():
        queue = figures["queue"]
        assert not numbers(queue, ("jobs", "failed", "jobs_per_s", "enqueue_to_start_ms_p50")), count
        assert queue["failed"] == 0
        for shape in ("one_step", "three_step"):
            assert not numbers(figures[shape], ENGINE_BURST), (count, shape)
            assert figures[shape]["failed"] == 0, (count, shape, figures[shape]["failure_classes"])
            assert not numbers(figures[shape]["cpu_ms_per_run"], ("workers", "postgres", "standin", "total"))
            paced = figures["light_load"][shape]
            assert not numbers(paced, ENGINE_PACED), (count, shape)
            assert paced["failed"] == 0
        assert figures["three_step"]["steps_per_s"] > figures["three_step"]["runs_per_s"]
        assert isinstance(figures["one_step"]["ratio_to_queue"], Number)
        assert figures["database_connections"] >= int(count)
    sizes = report["engine"]["record_sizes"]
    assert sizes["runs"] > 0 and sizes["bytes_per_three_step_run"] > sizes["bytes_per_one_step_run"] > 0
    assert not numbers(sizes["bytes_per_row"], ("runs", "run_steps", "cost_events", "procrastinate_jobs"))

    intake = report["intake"]
    assert intake["load_generator"]
    for route in ("healthz", "page"):
        assert not numbers(intake[route], LOAD), route
        assert intake[route]["requests"] > 0 and intake[route]["errors"] == 0, route

    isolation = report["isolation"]
    assert isolation["rows"] == 100 * 50 and isolation["clients"] == 100
    assert set(isolation["queries"]) == {"recent_runs", "one_run", "runs_by_status", "month_spend"}
    for name, query in isolation["queries"].items():
        assert not numbers(query, ("rls_ms_p50", "explicit_ms_p50", "ratio")), name
        # The same plan apart from how the client is named: RLS is not hiding a slower plan.
        assert any("Index" in line for line in query["rls_plan"]) == any("Index" in line
                                                                           for line in query["explicit_plan"]), name

    vault = report["vault"]
    assert vault["token_bytes"] == 200 and vault["encrypt_per_s"] > 0 and vault["decrypt_per_s"] > 0

    assert report["commits"]["commits_per_s_1_connection"] > 0 and report["commits"]["commits_per_s_8_connections"] > 0

    rush = report["rush"]
    assert rush["schedules"] == rush["slots"] == rush["runs_started_by_scheduler"] == 100
    assert rush["doubled"] == 0 and rush["missed"] == 0 and rush["failed_runs"] == 0
    assert rush["runs_started_by_a_second_tick"] == 0
    assert not numbers(rush, ("minute_to_last_start_s", "lateness_s_p50", "lateness_s_p99", "lateness_s_max",
                              "scheduler_seconds", "scheduler_cpu_s", "scheduler_longest_transaction_ms"))
    assert rush["scheduler_alone"]["started"] == rush["scheduler_alone"]["slots"]
    assert not numbers(rush["scheduler_alone"]["cpu_ms_per_slot"], ("scheduler", "postgres", "total"))
    assert not numbers(rush["intake_during_rush"], LOAD)
    assert rush["intake_during_rush"]["requests"] > 0 and rush["intake_during_rush"]["errors"] == 0

    chat = report["chat"]
    assert chat["turns"] == 10 and chat["before"]["cache_read_input_tokens"] == 0
    assert chat["after"]["cache_read_input_tokens"] > 0 and chat["after"]["microusd"] < chat["before"]["microusd"]

    polls = report["polls"]
    assert polls["missed"] == 0 and polls["doubled"] == 0
    assert polls["first_cycle_takes_the_state"]["runs_started"] == 0
    assert polls["cycle_with_one_new_email_each"]["runs_started"] == polls["automations"] == 20
    assert polls["empty_cycle"]["runs_started"] == 0 and polls["runs_after_empty_cycle"] == 20
    for cycle in ("first_cycle_takes_the_state", "cycle_with_one_new_email_each", "empty_cycle"):
        assert not numbers(polls[cycle], ("polls_per_s", "seconds")), cycle
        assert not numbers(polls[cycle]["cpu_ms_per_poll"], ("poller", "postgres", "total")), cycle

    year = report["year"]
    assert year["generation"]["rows"]["runs"] == year["runs"] == 10_000
    assert year["generation"]["rows"]["run_steps"] > year["runs"] == year["generation"]["rows"]["cost_events"]
    assert year["generation"]["monthly_costs_rows"] > 0
    for name, query in year["queries"].items():
        for kind in ("largest_client", "ordinary_clients"):
            assert not numbers(query[kind], ("rls_ms_p50", "rls_ms_p99", "explicit_ms_p50", "ratio",
                                                 "prepared_ratio", "execution_ratio")), (name, kind)
            assert query[kind]["rls_plan"] and query[kind]["explicit_plan"], (name, kind)
    prune = year["prune"]
    assert prune["runs_older_than_retention"] > 0 and prune["records_deleted"] >= 2 * prune["runs_older_than_retention"]
    assert prune["concurrent_inserts"] > 0 and prune["concurrent_insert_errors"] == 0
    export = year["export"]
    assert "error" not in export, export
    assert export["bytes"] > 0 and export["peak_rss_mb"] >= export["rss_before_export_mb"] > 0

    assert len(report["targets"]) == 20
    assert all(isinstance(check["value"], Number) for check in report["targets"]), report["targets"]
