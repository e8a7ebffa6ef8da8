"""Row-level security against an explicit WHERE client_id on the same queries and rows.

100 clients, 100,000 runs (and as many cost events): each query runs as hapex_agent in a
tenant transaction, where only the policy restricts it to the client, and as the owner
(which bypasses row-level security) with `WHERE client_id = ...` written out. Both are
timed by EXPLAIN (ANALYZE) on the server, alternating, for many clients; the figure is the
ratio of the medians of planning plus execution time, with each pair's plan shape.
"""

from __future__ import annotations

import re
import statistics
import uuid
from typing import Any

import psycopg

from shared.db import Database, tenant_transaction
from tests.bench.bench_setup import BenchServer
from tests.bench.bench_stats import percentile, rounded

# name -> (query under RLS as the agent, query as the owner with the explicit predicate)
QUERIES: dict[str, tuple[str, str]] = {
    "recent_runs": (
        """SELECT r.run_id, a.name, r.status, r.queued_at, r.finished_at
           FROM runs r JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
           ORDER BY r.queued_at DESC, r.run_id LIMIT 50""",
        """SELECT r.run_id, a.name, r.status, r.queued_at, r.finished_at
           FROM runs r JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
           WHERE r.client_id = %(client_id)s
           ORDER BY r.queued_at DESC, r.run_id LIMIT 50""",
    ),
    "one_run": (
        "SELECT run_id, status, started_at, finished_at FROM runs WHERE run_id = %(run_id)s",
        "SELECT run_id, status, started_at, finished_at FROM runs WHERE client_id = %(client_id)s "
        "AND run_id = %(run_id)s",
    ),
    "runs_by_status": (
        "SELECT status, count(*) FROM runs GROUP BY status",
        "SELECT status, count(*) FROM runs WHERE client_id = %(client_id)s GROUP BY status",
    ),
    "month_spend": (
        "SELECT coalesce(sum(amount_microusd), 0) FROM cost_events "
        "WHERE occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "SELECT coalesce(sum(amount_microusd), 0) FROM cost_events WHERE client_id = %(client_id)s "
        "AND occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    ),
}

POPULATE = """
INSERT INTO clients (client_id, name)
SELECT ('00000000-0000-4000-8000-' || lpad(c::text, 12, '0'))::uuid, 'Client ' || c
FROM generate_series(1, %(clients)s) c;
INSERT INTO automations (client_id, automation_id, name, status, trigger, steps)
SELECT client_id, client_id, 'Digest', 'enabled', '{"kind": "manual"}', '[]' FROM clients;
INSERT INTO runs (client_id, run_id, automation_id, automation_version, trigger_kind, status, queued_at,
                  started_at, finished_at)
SELECT c.client_id, gen_random_uuid(), c.client_id, 1, 'manual',
       (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed'])[1 + i %% 4],
       now() - make_interval(mins => i), now() - make_interval(mins => i), now() - make_interval(mins => i)
FROM clients c, generate_series(1, %(per_client)s) i;
INSERT INTO cost_events (client_id, run_id, step_index, source, provider, amount_microusd, occurred_at)
SELECT client_id, run_id, 0, 'provider_call', 'webhook', 10, queued_at FROM runs;
VACUUM (ANALYZE)
"""

_TIMES = re.compile(r"(Planning|Execution) Time: ([0-9.]+) ms")


def _explain(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> tuple[float, float, list[str]]:
    """(planning ms, execution ms, plan lines) of one EXPLAIN ANALYZE."""
    rows = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) " + query, params).fetchall()
    lines = [row[0] for row in rows]
    times = {m.group(1): float(m.group(2)) for line in lines if (m := _TIMES.search(line))}
    return times.get("Planning", 0.0), times.get("Execution", 0.0), lines


def _shape(lines: list[str]) -> list[str]:
    """The plan's node names and index conditions, without timings."""
    shape = []
    for line in lines:
        text = line.strip().lstrip("-> ").strip()
        if not text or text.startswith(("Planning", "Execution", "Buffers", "Planning:")):
            continue
        shape.append(re.sub(r"\s*\(actual.*\)$", "", text))
    return shape


def run(server: BenchServer, *, clients: int, per_client: int, rounds: int) -> dict[str, Any]:
    with server.fresh_database("isolation") as database:
        with psycopg.connect(database.owner_dsn, autocommit=True) as owner:
            bypass = owner.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
                                   ).fetchone()
            if not (bypass and bypass[0]):
                return {"skipped": "the owner role of BENCH_DATABASE_URL does not bypass row-level security"}
            for statement in POPULATE.split(";"):
                if statement.strip():
                    owner.execute(statement, {"clients": clients, "per_client": per_client})
            client_ids = [row[0] for row in owner.execute("SELECT client_id FROM clients ORDER BY client_id")]
            sample_runs = {cid: owner.execute("SELECT run_id FROM runs WHERE client_id = %s LIMIT 1", [cid]
                                              ).fetchone()[0] for cid in client_ids}
            total_rows = owner.execute("SELECT count(*) FROM runs").fetchone()[0]
            agent = Database(database.agent_dsn, name="bench-isolation").open()
            results: dict[str, Any] = {}
            try:
                for name, (rls_query, explicit_query) in QUERIES.items():
                    rls_ms, explicit_ms = [], []
                    rls_exec, explicit_exec = [], []
                    rls_plan: list[str] = []
                    explicit_plan: list[str] = []
                    for i in range(rounds):
                        client_id: uuid.UUID = client_ids[i % len(client_ids)]
                        params = {"client_id": client_id, "run_id": sample_runs[client_id]}
                        # Alternating which goes first, so that neither always finds the pages warmer.
                        for rls_turn in ((True, False) if i % 2 else (False, True)):
                            if rls_turn:
                                with tenant_transaction(agent, client_id) as conn:
                                    planning, execution, rls_plan = _explain(conn, rls_query, params)
                                rls_ms.append(planning + execution)
                                rls_exec.append(execution)
                            else:
                                planning, execution, explicit_plan = _explain(owner, explicit_query, params)
                                explicit_ms.append(planning + execution)
                                explicit_exec.append(execution)
                    rls_median, explicit_median = statistics.median(rls_ms), statistics.median(explicit_ms)
                    paired = [r / e for r, e in zip(rls_ms, explicit_ms, strict=True) if e > 0]
                    results[name] = {
                        "rls_ms_p50": rounded(rls_median, 4),
                        "explicit_ms_p50": rounded(explicit_median, 4),
                        "rls_ms_p99": rounded(percentile(rls_ms, 99), 4),
                        "explicit_ms_p99": rounded(percentile(explicit_ms, 99), 4),
                        "ratio": rounded(rls_median / explicit_median, 3) if explicit_median else None,
                        "paired_ratio_p50": rounded(percentile(paired, 50), 3),
                        "difference_us_p50": rounded((rls_median - explicit_median) * 1000, 1),
                        # Without planning: what a prepared statement (psycopg prepares after 5 uses) pays.
                        "execution_ratio": rounded(statistics.median(rls_exec) / statistics.median(explicit_exec), 3)
                        if statistics.median(explicit_exec) else None,
                        "rls_plan": _shape(rls_plan),
                        "explicit_plan": _shape(explicit_plan),
                    }
            finally:
                agent.close()
    ratios = [r["ratio"] for r in results.values() if r["ratio"] is not None]
    return {
        "clients": clients,
        "rows": int(total_rows),
        "rounds": rounds,
        "queries": results,
        "worst_ratio": max(ratios) if ratios else None,
    }
