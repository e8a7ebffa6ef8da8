"""One poll cycle across many "when something new arrives" automations.

On a fresh database: `automations` enabled Gmail poll automations spread over `clients` clients, each
client with a Google connection whose token is sealed by the vault, and the loopback provider stand-in
(tests/provider_standin.py) answering Gmail's profile, history and search over TLS. The poller
(agent_service.polls.poller.poll_due_automations, the code the `poll_new_items` job runs once a minute in
a worker) runs in this benchmark's own process, so that its CPU is its own to measure:

1. the first cycle takes every mailbox as seen (users.getProfile each; no run);
2. one email arrives, and a cycle starts one run per automation (history, then the search; each run
   queued in the poll's transaction);
3. nothing arrives, and a cycle finds nothing (history only; no run, no seen record).

Reported per cycle: polls/s, the poller's CPU per poll and PostgreSQL's, and for the second cycle the
runs started and any automation with a run missed or doubled.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from agent_service.polls import poller
from shared.automations.repository import create_automation, set_status
from shared.config import Environment, PoolSettings, resolve_catalog
from shared.db import Database, tenant_transaction
from tests.bench import bench_cpu
from tests.bench.bench_setup import BenchServer, local_tls
from tests.bench.bench_stats import rounded
from tests.factories import make_client
from tests.provider_standin import ProviderStandIn
from tests.run_fixtures import G, connect, runtime_for

DEFINITION = {
    "name": "New invoice email",
    "trigger": {"kind": "poll", "source": "gmail.new_email", "every_minutes": 5, "options": {"query": "invoice"}},
    "steps": [{"capability": "llm.summarise", "input": {"text": "{{ trigger.email.subject }}"}}],
}


@dataclass(frozen=True)
class PollSize:
    automations: int
    clients: int


QUICK = PollSize(automations=20, clients=2)
FULL = PollSize(automations=1000, clients=20)


def _add_automations(owner_dsn: str, templates: list[tuple[uuid.UUID, uuid.UUID]], count: int) -> None:
    """`count` enabled poll automations copied from each client's template (which is one of them)."""
    per, extra = divmod(count - len(templates), len(templates))
    with psycopg.connect(owner_dsn) as conn:
        for index, (client_id, automation_id) in enumerate(templates):
            copies = per + (1 if index < extra else 0)
            if copies <= 0:
                continue
            conn.execute(
                """
                WITH made AS (
                    INSERT INTO automations (client_id, automation_id, name, status, version, trigger, steps)
                    SELECT a.client_id, gen_random_uuid(), a.name || ' ' || g, 'enabled', 1, a.trigger, a.steps
                    FROM automations a, generate_series(1, %(copies)s) g
                    WHERE a.automation_id = %(template)s
                    RETURNING client_id, automation_id, trigger, steps)
                INSERT INTO automation_versions (client_id, automation_id, version, trigger, steps)
                SELECT client_id, automation_id, 1, trigger, steps FROM made
                """, {"copies": copies, "template": automation_id})
        conn.execute("ANALYZE automations")


def _make_due(owner_dsn: str) -> None:
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("UPDATE automations SET next_run_at = now() - interval '1 second' "
                     "WHERE trigger ->> 'kind' = 'poll' AND next_run_at IS NOT NULL")


def _cycle(rt: Any, server: BenchServer, count: int) -> dict[str, Any]:
    groups = {"poller": [os.getpid()]}
    before = bench_cpu.snapshot(groups, server.postmaster())
    cpu_began, began = time.process_time(), time.monotonic()
    started = poller.poll_due_automations(rt, datetime.now(UTC), budget_seconds=1800)
    seconds = time.monotonic() - began
    cpu = time.process_time() - cpu_began
    usage = bench_cpu.usage(before, bench_cpu.snapshot(groups, server.postmaster()), seconds) or {}
    postgres_ms = (usage.get("postgres") or 0.0) * seconds * 1000 / max(count, 1)
    return {"polls": count, "runs_started": started, "seconds": rounded(seconds, 2),
            "polls_per_s": rounded(count / seconds, 1) if seconds else None,
            "cpu_ms_per_poll": {"poller": rounded(cpu * 1000 / max(count, 1), 3), "postgres": rounded(postgres_ms, 3),
                                "total": rounded(cpu * 1000 / max(count, 1) + postgres_ms, 3)},
            "everything_else_cores": usage.get("everything_else")}


def _per_automation(owner_dsn: str) -> tuple[int, int]:
    """Automations with no run, and with more than one, for the email that arrived."""
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1) FROM "
                           "(SELECT a.automation_id, count(r.run_id) AS n FROM automations a LEFT JOIN runs r "
                           "ON r.automation_id = a.automation_id AND r.trigger_kind = 'poll' "
                           "GROUP BY a.automation_id) per").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run(server: BenchServer, size: PollSize, log_dir: Path, progress) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    figures: dict[str, Any] = {"automations": size.automations, "clients": size.clients,
                               "threads": poller.POLL_THREADS,
                               "poller": "poll_due_automations run in the benchmark's process"}
    with server.fresh_database("polls") as database, ProviderStandIn(local_tls()) as standin:
        agent_db = Database(database.agent_dsn, PoolSettings(1, 2 * poller.POLL_THREADS + 2), name="bench-poller")
        intake_db = Database(database.intake_dsn, PoolSettings(1, 2), name="bench-poll-setup")
        agent_db.open()
        intake_db.open()
        try:
            rt = runtime_for(agent_db, providers=resolve_catalog(Environment(standin.provider_environment())))
            rt.verify = standin.ca_file
            progress(f"polls: {size.automations} poll automations over {size.clients} clients")
            templates = []
            for _ in range(size.clients):
                client_id = make_client(intake_db)
                connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"], expires_in=timedelta(days=1))
                with tenant_transaction(intake_db, client_id) as conn:
                    automation_id = create_automation(conn, client_id=client_id, definition=DEFINITION)
                    set_status(conn, automation_id=automation_id, status="enabled")
                templates.append((client_id, automation_id))
            _add_automations(database.owner_dsn, templates, size.automations)
            figures["first_cycle_takes_the_state"] = _cycle(rt, server, size.automations)
            standin.state.arrive(1)
            _make_due(database.owner_dsn)
            figures["cycle_with_one_new_email_each"] = _cycle(rt, server, size.automations)
            missed, doubled = _per_automation(database.owner_dsn)
            figures.update(missed=missed, doubled=doubled)
            _make_due(database.owner_dsn)
            figures["empty_cycle"] = _cycle(rt, server, size.automations)
            with psycopg.connect(database.owner_dsn) as conn:
                figures["runs_after_empty_cycle"] = conn.execute(
                    "SELECT count(*) FROM runs WHERE trigger_kind = 'poll'").fetchone()[0]  # type: ignore[index]
                figures["seen_records"] = conn.execute("SELECT count(*) FROM poll_seen").fetchone()[0]  # type: ignore[index]
            figures["provider_calls"] = dict(standin.state.calls)
        finally:
            agent_db.close()
            intake_db.close()
    return figures
