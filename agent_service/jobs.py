"""The job queue (procrastinate on PostgreSQL) and the jobs the agent's workers run.

Job arguments carry ids only, never customer content: the queue tables are shared by
every client and sit outside row-level security.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import procrastinate
import procrastinate.exceptions
import psycopg

from agent_service.queue import dead_worker_ids, succeeded_but_taken_lately
from shared.db import Database, DatabaseUnavailable

if TYPE_CHECKING:
    from agent_service.runtime import AgentRuntime

logger = logging.getLogger(__name__)

tasks = procrastinate.Blueprint()

_state: dict[str, AgentRuntime] = {}


QUEUE_CHECKOUT_TIMEOUT = 5.0


def build_queue(conninfo: str, runtime: AgentRuntime) -> procrastinate.App:
    """The procrastinate app of this process, connected as the agent role."""
    _state["runtime"] = runtime
    app = procrastinate.App(
        # A short wait for a connection, and a lost one retried for only a few seconds before a fresh
        # attempt: a worker notices an outage quickly and takes jobs again soon after the database returns.
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4,
                                                 timeout=QUEUE_CHECKOUT_TIMEOUT, reconnect_timeout=5.0)
    )
    app.add_tasks_from(tasks, namespace="hapex")
    return app


def runtime() -> AgentRuntime:
    return _state["runtime"]


class RevocationPending(Exception):
    """The provider could not take the revocation yet; procrastinate will retry."""


@tasks.task(name="finish_revocation", queue="maintenance", pass_context=True,
            retry=procrastinate.RetryStrategy(max_attempts=8, exponential_wait=30))
def finish_revocation(context: procrastinate.JobContext, client_id: str, connection_id: str, provider: str) -> str:
    """Revoke a disconnected connection's token at its provider, then delete the ciphertext."""
    from agent_service.connections.lifecycle import finish_pending_revocation
    from agent_service.connections.provider_oauth import RevocationOutcome

    rt = runtime()
    attempts = context.job.attempts if context.job else 0
    outcome = finish_pending_revocation(
        rt.db, rt.vault, client_id=uuid.UUID(client_id), connection_id=uuid.UUID(connection_id),
        provider=rt.provider(provider), oauth_client=rt.oauth_clients.get(provider), verify=rt.verify,
        give_up=attempts >= 7,
    )
    if outcome is RevocationOutcome.RETRY_LATER:
        raise RevocationPending()
    return outcome.value


class RunInterrupted(Exception):
    """The database went away during the run: not an outcome, so the job is retried and the next
    execution settles the run (resumes it, or fails the step in flight as outcome unknown)."""


@tasks.task(name="execute_run", queue="runs", pass_context=False,
            retry=procrastinate.RetryStrategy(max_attempts=20, wait=2, retry_exceptions={RunInterrupted}))
def execute_run(client_id: str, run_id: str) -> str:
    """Execute one run; its record says what happened."""
    from agent_service.runs.engine import execute_run as execute

    try:
        return execute(runtime(), client_id=uuid.UUID(client_id), run_id=uuid.UUID(run_id))
    except DatabaseUnavailable as exc:
        logger.warning("run interrupted by the database; it will be retried",
                       extra={"client_id": client_id, "run_id": run_id})
        raise RunInterrupted() from exc


# Runs not final whose job no longer queues or runs them are failed after this long (the job is deferred
# in the run's own transaction, so only a job that failed, was cancelled or was deleted leaves one).
LOST_RUN_AFTER_SECONDS = 5.0


# A job marked succeeded whose run is not final may still be carried out by the worker that took it
# last (see queue.succeeded_but_taken_lately): the run is left to it for its time limit and this margin.
TAKEN_OVER_MARGIN_SECONDS = 120.0


def reconcile_runs(rt: AgentRuntime) -> int:
    """Every run reaches a final state: one whose job is gone is failed, its steps settled; never one
    that a worker may still be carrying out."""
    from agent_service.runs import repository as runs
    from agent_service.runs.engine import settle_lost_run

    within = rt.limits.run_seconds + TAKEN_OVER_MARGIN_SECONDS
    with rt.db.transaction() as conn:
        lost = [row for row in runs.unfinished_runs(conn, older_than_seconds=LOST_RUN_AFTER_SECONDS)
                if not succeeded_but_taken_lately(conn, lock=f"run:{row['run_id']}", within_seconds=within)]
    settled = sum(settle_lost_run(rt, client_id=row["client_id"], run_id=row["run_id"]) for row in lost)
    if settled:
        logger.warning("runs whose job was gone settled as failed", extra={"count": settled})
    return settled


async def reconcile_runs_async() -> int:
    return await asyncio.to_thread(reconcile_runs, runtime())


@tasks.periodic(cron="* * * * *", periodic_id="reconcile_runs")
@tasks.task(name="reconcile_runs", queue="maintenance", pass_context=False)
def reconcile_runs_task(timestamp: int) -> int:
    """Fail the runs left unfinished by a job that failed, was cancelled or was removed."""
    return reconcile_runs(runtime())


@tasks.periodic(cron="* * * * *", periodic_id="fire_due_schedules")
@tasks.task(name="fire_due_schedules", queue="maintenance", pass_context=False)
def fire_due_schedules(timestamp: int) -> int:
    """Start the runs whose schedule is due; each slot once across all workers."""
    from agent_service.runs.scheduler import fire_due_schedules as fire

    return fire(runtime(), datetime.now(UTC))


@tasks.periodic(cron="* * * * *", periodic_id="poll_new_items")
@tasks.task(name="poll_new_items", queue="maintenance", pass_context=False)
def poll_new_items(timestamp: int) -> int:
    """Poll the due "when something new arrives" triggers; each new item starts one run across all workers."""
    from agent_service.polls.poller import poll_due_automations

    return poll_due_automations(runtime(), datetime.now(UTC))


# procrastinate's stalled_worker_timeout: a worker that has sent no heartbeat for this long is dead.
STALLED_AFTER_SECONDS = 30


async def requeue_stalled_jobs(app: procrastinate.App) -> int:
    """Requeue the jobs of dead workers (liveness lock free, or heartbeat stale); the run engine settles
    each interrupted run."""
    stalled = {job.id: job for job in
               await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS)}
    for worker_id in await dead_worker_ids(app):
        for job in await app.job_manager.list_jobs_async(status="doing", worker_id=worker_id):
            stalled[job.id] = job
    requeued = 0
    for job in stalled.values():
        try:
            await app.job_manager.retry_job(job)
        except procrastinate.exceptions.ConnectorException as exc:
            if not isinstance(exc.__cause__, psycopg.errors.RaiseException):
                raise
            continue  # another worker requeued it first (procrastinate refuses a job no longer doing)
        requeued += 1
    if requeued:
        logger.warning("stalled jobs requeued", extra={"count": requeued})
    return requeued


@tasks.periodic(cron="* * * * *", periodic_id="retry_stalled_jobs")
@tasks.task(name="retry_stalled_jobs", queue="maintenance", pass_context=True)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Requeue jobs whose worker stopped sending heartbeats; the run engine fails them cleanly."""
    return await requeue_stalled_jobs(context.app)


async def settle_stalled_jobs_at_start(app: procrastinate.App) -> int:
    """A starting worker requeues dead workers' jobs now, not at the next five-minute sweep, and sweeps once
    more when a worker that died just before this start has been silent long enough to count as dead."""
    count = await requeue_stalled_jobs(app)
    # A worker that died just before this start counts as dead a moment later (the starting worker
    # sweeps again then, see worker.py), or at the latest once its heartbeat is stale: this sweep.
    await app.configure_task("hapex:retry_stalled_jobs", schedule_in={"seconds": STALLED_AFTER_SECONDS + 5}
                             ).defer_async(timestamp=int(time.time()))
    return count

# The retention prune deletes a batch of at most PRUNE_BATCH runs (and as many cost events, seen poll
# items and deleted automations) per transaction, and holds the locks it takes only that long. A run
# costs ~0.1 to 0.4 ms to delete on a busy 2-core machine (its steps cascade, its cost events and
# retries are unlinked by foreign-key triggers), and a loaded machine can make it several times that:
# a batch of 100 held its locks 92 ms in one `make bench` year run and 153 ms in the next. So the job
# bounds each batch by time as well as by count: a batch slower than PRUNE_BATCH_TARGET_MS halves the
# next, one faster than half of it grows the next back towards PRUNE_BATCH, and a batch still running
# at PRUNE_BATCH_TIMEOUT_MS is cancelled (statement_timeout: it rolls back whole and its locks are
# released, within 100 ms) and tried again at half the size. A batch of one run has no timeout, so
# that the prune always gets through, however loaded the machine.
PRUNE_BATCH = 50
PRUNE_BATCH_TARGET_MS = 40.0
PRUNE_BATCH_TIMEOUT_MS = 80


@dataclass(frozen=True)
class PruneBatch:
    """One prune transaction: the batch size asked for, the records it deleted, how long it held them."""

    size: int
    deleted: int
    milliseconds: float
    cancelled: bool


def prune_old_records(db: Database, days: int, *, on_batch: Callable[[PruneBatch], None] | None = None) -> int:
    """Delete run records and cost events older than `days`, a time-bound batch per transaction;
    how many records were deleted."""
    ceiling = max(1, PRUNE_BATCH)
    size = ceiling
    deleted = 0
    while True:
        began = time.perf_counter()
        try:
            with db.transaction() as conn:
                if size > 1:
                    conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{PRUNE_BATCH_TIMEOUT_MS}ms"])
                row = conn.execute("SELECT hapex_prune_run_records(make_interval(days => %s), %s)",
                                   [days, size]).fetchone()
        except DatabaseUnavailable as exc:
            if size == 1 or not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
                raise  # not our timeout (a batch of one has none): someone cancelled the prune
            if on_batch is not None:
                on_batch(PruneBatch(size, 0, (time.perf_counter() - began) * 1000, cancelled=True))
            size = max(1, size // 2)
            continue
        milliseconds = (time.perf_counter() - began) * 1000
        batch = int(row[0]) if row else 0
        if on_batch is not None:
            on_batch(PruneBatch(size, batch, milliseconds, cancelled=False))
        deleted += batch
        if batch == 0:
            return deleted
        if milliseconds > PRUNE_BATCH_TARGET_MS:
            size = max(1, size // 2)
        elif milliseconds < PRUNE_BATCH_TARGET_MS / 2:
            size = min(ceiling, size + max(1, size // 2))


@tasks.periodic(cron="17 3 * * *", periodic_id="prune_run_records")
@tasks.task(name="prune_run_records", queue="maintenance", pass_context=False)
def prune_run_records(timestamp: int) -> int:
    """Delete run records and cost events past the retention age, a short batch per transaction so
    that no lock is held long (a day of a busy deployment is ~30,000 runs with their steps and costs).
    The monthly rollup of cost events (monthly_costs) is the spending history and stays."""
    deleted = prune_old_records(runtime().db, runtime().limits.retention_days)
    logger.info("old run records pruned", extra={"count": deleted})
    return deleted


@tasks.periodic(cron="*/10 * * * *", periodic_id="prune_expired_sessions")
@tasks.task(name="prune_expired_sessions", queue="maintenance", pass_context=False)
def prune_expired_sessions(timestamp: int) -> int:
    """Delete sessions past their expiry so a stolen, expired cookie finds nothing."""
    with runtime().db.transaction() as conn:
        row = conn.execute("SELECT hapex_prune_expired_sessions()").fetchone()
    deleted = int(row[0]) if row else 0
    logger.info("expired sessions pruned", extra={"count": deleted})
    return deleted


@tasks.periodic(cron="*/10 * * * *", periodic_id="prune_expired_oauth_states")
@tasks.task(name="prune_expired_oauth_states", queue="maintenance", pass_context=False)
def prune_expired_oauth_states(timestamp: int) -> int:
    """Delete OAuth consent requests that expired unused; a live one stays until its callback."""
    with runtime().db.transaction() as conn:
        row = conn.execute("SELECT hapex_prune_expired_oauth_states()").fetchone()
    deleted = int(row[0]) if row else 0
    logger.info("expired oauth states pruned", extra={"count": deleted})
    return deleted


@tasks.periodic(cron="*/10 * * * *", periodic_id="check_connection_health")
@tasks.task(name="check_connection_health", queue="maintenance", pass_context=False)
def check_connection_health(timestamp: int) -> int:
    """Refresh tokens a scheduled run will soon need and prove idle refresh tokens still work."""
    from agent_service.connections.health import sweep_connections

    return sum(sweep_connections(runtime(), now=datetime.now(UTC)).values())


@tasks.periodic(cron="* * * * *", periodic_id="send_notifications")
@tasks.task(name="send_notifications", queue="maintenance", pass_context=False)
def send_notifications(timestamp: int) -> int:
    """Email pending notices to their clients' users; without SMTP settings, keep them in the app."""
    from agent_service.notifications.delivery import deliver_notifications

    rt = runtime()
    return sum(deliver_notifications(rt.db, rt.smtp).values())


@tasks.task(name="send_account_email", queue="maintenance", pass_context=False)
def send_account_email(client_id: str, email_id: str) -> str:
    """Send one account email the moment the intake asks for it (deferred by a database trigger)."""
    from agent_service.notifications.account_emails import deliver_account_email

    rt = runtime()
    return deliver_account_email(rt.db, rt.smtp, client_id=uuid.UUID(client_id), email_id=uuid.UUID(email_id),
                                 link_origin=rt.intake_public_url)


@tasks.periodic(cron="* * * * *", periodic_id="send_account_emails")
@tasks.task(name="send_account_emails", queue="maintenance", pass_context=False)
def send_account_emails(timestamp: int) -> int:
    """Retry the account emails a failed send left pending."""
    from agent_service.notifications.account_emails import deliver_account_emails

    rt = runtime()
    return sum(deliver_account_emails(rt.db, rt.smtp, link_origin=rt.intake_public_url).values())


@tasks.periodic(cron="41 3 * * *", periodic_id="remove_finished_jobs")
@tasks.task(name="remove_finished_jobs", queue="maintenance", pass_context=True)
async def remove_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Keep the queue tables small: succeeded jobs go after 3 days, failed or cancelled after 30.

    Runs keep their own records; a finished job row and its events are only the queue's.
    """
    from procrastinate import builtin_tasks

    await builtin_tasks.remove_old_jobs(context, max_hours=72)
    await builtin_tasks.remove_old_jobs(context, max_hours=720, remove_failed=True, remove_cancelled=True,
                                        remove_aborted=True)
