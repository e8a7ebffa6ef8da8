"""Entry point of an agent worker process: runs queued jobs until told to stop.

The process outlives the database: when the database goes away, procrastinate's worker stops
(its heartbeat, listener or fetch fails); this loop then waits a bounded, jittered backoff and
starts a new one, which drops the old identity (handing back any job it still held) and
registers afresh. Only a configuration error or a signal ends the process.

A signal (SIGTERM, or SIGINT from a terminal) is handled here, not by procrastinate, whose
handler removes itself at the first signal so that a second one kills the process mid-step:
here every further signal only says that the worker is already stopping. The step in flight
gets the grace period (WORKER_GRACE_SECONDS) to finish; a job still running after it is handed
back (requeued), so the next worker settles its run at once (resumed, or failed as interrupted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import procrastinate
import psycopg
from procrastinate.worker import Worker

from agent_service import jobs, queue
from agent_service.config import AgentConfig
from agent_service.runtime import AgentRuntime
from agent_service.vault import open_vault
from shared.config import ConfigError
from shared.db import Database, DatabaseUnavailable
from shared.db.errors import refuses_credentials
from shared.structured_logging import configure_logging

logger = logging.getLogger(__name__)

QUEUES = ["runs", "maintenance"]
# A requeued job sends no notification: an idle worker looks for one this often (procrastinate's default is 5 s).
FETCH_POLLING_SECONDS = 2.0

# procrastinate's routine lines about each job: started, succeeded, a periodic one deferred.
_ROUTINE_ACTIONS = frozenset({"start_job", "job_success", "periodic_task_deferred"})


class QuietMaintenance(logging.Filter):
    """The maintenance queue's periodic jobs run every minute or so: their routine lines are DEBUG.

    Without this a worker with nothing to do writes several INFO lines a minute. What the jobs
    themselves log, and any failure or retry, still passes; so do the lines of run jobs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        job = getattr(record, "job", None)
        if (getattr(record, "action", None) in _ROUTINE_ACTIONS and isinstance(job, dict)
                and job.get("queue") == "maintenance" and record.levelno <= logging.INFO):
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


@dataclass
class Backoff:
    """Exponential, capped and jittered: a fleet of workers does not reconnect in lockstep."""

    base: float = 0.5
    cap: float = 5.0
    attempts: int = 0
    uniform: Callable[[], float] = random.random

    def next_delay(self) -> float:
        self.attempts += 1
        delay = min(self.cap, self.base * 2.0 ** (self.attempts - 1))
        return delay * (0.5 + self.uniform() / 2)

    def reset(self) -> None:
        self.attempts = 0


# A worker that ran this long before losing the database starts its backoff from the beginning.
HEALTHY_AFTER_SECONDS = 30.0


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_database_outage(exc: BaseException) -> bool:
    """Whether the worker stopped because the database went away (worth reconnecting), not for a defect."""
    return any(isinstance(cause, (psycopg.OperationalError, DatabaseUnavailable)) for cause in _causes(exc))


def refused_credentials(exc: BaseException) -> bool:
    return any(isinstance(cause, psycopg.OperationalError) and refuses_credentials(cause) for cause in _causes(exc))


class WorkerService:
    """One worker process: procrastinate workers, one after another across database outages."""

    def __init__(self, app: procrastinate.App, conninfo: str, *, concurrency: int, grace_seconds: float,
                 backoff: Backoff | None = None) -> None:
        self.app = app
        self.conninfo = conninfo
        self.concurrency = concurrency
        self.grace_seconds = grace_seconds
        self.backoff = backoff or Backoff()
        self.stopping = asyncio.Event()
        self.previous_worker_id: int | None = None

    def request_stop(self, signum: int) -> None:
        if self.stopping.is_set():
            logger.info("worker already stopping", extra={"signal": signal.Signals(signum).name})
            return
        logger.info("worker stopping: the step in flight may finish",
                    extra={"signal": signal.Signals(signum).name, "grace_seconds": self.grace_seconds})
        self.stopping.set()

    async def settle_at_start(self) -> None:
        """Before taking jobs: hand back what this process held before the database went away,
        requeue dead workers' jobs and settle runs whose job is gone."""
        if self.previous_worker_id is not None:
            # Its jobs lose their worker (ON DELETE SET NULL) and so count as stalled: requeued below.
            await self.app.job_manager.unregister_worker(self.previous_worker_id)
            self.previous_worker_id = None
        await jobs.settle_stalled_jobs_at_start(self.app)
        await jobs.reconcile_runs_async()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop, signum)
        while not self.stopping.is_set():
            started = time.monotonic()
            worker = Worker(self.app, queues=QUEUES, concurrency=self.concurrency, install_signal_handlers=False,
                            fetch_job_polling_interval=FETCH_POLLING_SECONDS)
            outcome = asyncio.ensure_future(self._run_once(worker))
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({outcome, stop}, return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set() and not outcome.done():
                await self._stop(worker, outcome)
                return
            stop.cancel()
            error = outcome.exception()
            if error is not None and not is_database_outage(error):
                raise error
            if error is not None and refused_credentials(error):
                raise ConfigError("AGENT_DATABASE_URL", "is refused by the database (wrong role or password)")
            if self.stopping.is_set():
                return
            if worker.worker_id is not None:  # registered, then lost: the identity to drop at the next start
                self.previous_worker_id = worker.worker_id
            if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            logger.warning("database unavailable; worker reconnecting",
                           extra={"retry_in_seconds": round(delay, 2), "attempt": self.backoff.attempts})
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _run_once(self, worker: Worker) -> None:
        await self.settle_at_start()
        if self.stopping.is_set():
            return  # worker.run() would forget a stop asked for before it began
        if self.backoff.attempts:
            logger.info("database back; worker taking jobs again", extra={"attempt": self.backoff.attempts})
        running = asyncio.ensure_future(worker.run())  # type: ignore[no-untyped-call]
        alive = asyncio.ensure_future(self._hold_liveness(worker))
        sweep = asyncio.ensure_future(self._sweep_again_soon())
        try:
            await asyncio.wait({running, alive}, return_when=asyncio.FIRST_COMPLETED)
            if alive.done() and not running.done():
                worker.stop()  # type: ignore[no-untyped-call]  # its liveness connection is lost: other workers will count it dead
            await running
            if alive.done() and alive.exception() is not None:
                raise alive.exception()  # type: ignore[misc]
        finally:
            alive.cancel()
            sweep.cancel()

    async def _sweep_again_soon(self) -> None:
        """A worker that died just before this start (the usual case: its supervisor restarted it) counts
        as dead once its heartbeat is a moment old: requeue its jobs then, not at the next sweep."""
        await asyncio.sleep(queue.LIVENESS_SETTLE_SECONDS + 0.5)
        try:
            await jobs.requeue_stalled_jobs(self.app)
        except Exception as exc:  # the periodic sweep will do it
            logger.warning("stalled jobs not requeued", extra={"error_class": type(exc).__name__})

    async def _hold_liveness(self, worker: Worker) -> None:
        while worker.worker_id is None:  # registered first thing in worker.run()
            await asyncio.sleep(0.02)
        await queue.hold_liveness_lock(self.conninfo, worker.worker_id)

    async def _stop(self, worker: Worker, outcome: asyncio.Future[None]) -> None:
        worker.stop()  # type: ignore[no-untyped-call]
        done, _ = await asyncio.wait({outcome}, timeout=self.grace_seconds)
        if done:
            if outcome.exception() is not None and not is_database_outage(outcome.exception()):  # type: ignore[arg-type]
                logger.warning("worker stopped on an error", extra={"error_class": type(outcome.exception()).__name__})
            return
        # A step outlived the grace period: give its job back so the next worker settles the run now.
        handed_back = 0
        if worker.worker_id is not None:
            try:
                await self.app.job_manager.unregister_worker(worker.worker_id)
                handed_back = await jobs.requeue_stalled_jobs(self.app)
            except Exception as exc:  # the database is away too: the next start's sweep hands it back
                logger.warning("job not handed back", extra={"error_class": type(exc).__name__})
        logger.warning("worker stopped with a step still running; its job was handed back",
                       extra={"count": handed_back, "grace_seconds": self.grace_seconds})
        logging.shutdown()
        # The step's thread cannot be interrupted and the interpreter would wait for it at exit.
        os._exit(0)


def lower_cpu_priority(niceness: int) -> int:
    """This process's threads (and so those it starts) at `niceness` at least (WORKER_NICE); the niceness now.

    Linux keeps a niceness per thread, and new threads inherit their creator's: every thread
    alive is set, so none started earlier (a pool's) stays ahead. Where the kernel groups
    processes by session (autogroup, on by default on most distributions), a niceness counts only
    against the session's own processes, and `hapex run` starts each service in its own session:
    a worker leading its session also sets that session's group, or it would still take as much
    of the CPU as the intake's. A container's CPU weight is its runtime's setting (compose:
    cpu_shares). Raising a niceness needs no privilege; one already higher is kept.
    """
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        try:
            threads = [int(tid) for tid in os.listdir("/proc/self/task")]
        except OSError:
            threads = [0]  # no /proc: the call sets the whole process
        for thread in threads:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, thread, niceness)
    if os.getsid(0) == os.getpid():
        _lower_session_group(niceness)
    return max(niceness, current)


def _lower_session_group(niceness: int) -> None:
    """The session's autogroup at `niceness` at least; nothing where the kernel has none."""
    try:
        with open("/proc/self/autogroup", encoding="ascii") as group:
            current = int(group.read().split()[-1])  # "/autogroup-123 nice 0"
        if niceness > current:
            with open("/proc/self/autogroup", "w", encoding="ascii") as group:
                group.write(str(niceness))
    except (OSError, ValueError, IndexError):
        return


def run_worker(config: AgentConfig, *, concurrency: int = 1) -> None:
    configure_logging("worker", config.log_level, log_format=config.log_format)
    niceness = lower_cpu_priority(config.worker_nice)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietMaintenance())
    database = Database(config.database_url, config.pool, name="hapex-worker").open()
    try:
        database.assert_role_is_confined()
        # Refuses to run jobs when the database holds ciphertexts under key ids it lacks.
        vault = open_vault(config, database)
    except Exception:
        database.close()
        raise
    runtime = AgentRuntime.build(database, vault, config)
    app = jobs.build_queue(config.database_url, runtime)
    if runtime.allow_loopback_webhooks:
        logger.warning("benchmark switch on: webhook steps may call loopback addresses")
    logger.info("worker starting", extra={"niceness": niceness})
    service = WorkerService(app, config.database_url, concurrency=concurrency,
                            grace_seconds=config.worker_grace_seconds)

    async def serve() -> None:
        async with app.open_async():
            await service.serve()

    try:
        asyncio.run(serve())
    finally:
        database.close()
        logger.info("worker stopped")
