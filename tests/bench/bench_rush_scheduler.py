"""The 08:00 rush's scheduler, in a process started the way `hapex run` starts a worker.

In production `fire_due_schedules` runs inside a worker (the periodic job), so it runs at the
worker's CPU priority (WORKER_NICE, agent_service.worker.lower_cpu_priority) in a session of its
own. The benchmark's workers run with `--no-scheduler`, and this process, started as they are
(its own session, the workers' environment), makes the minute's calls instead, so that the
scheduler's CPU and transactions are its own to measure while it competes for the cores as it
would in a worker: one call a minute until `schedules` runs have started. It prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from agent_service.config import AgentConfig
from agent_service.runs import scheduler
from agent_service.worker import lower_cpu_priority
from shared.config import PoolSettings
from shared.db import Database
from tests.bench.bench_rush import TimedTransactions


def main(argv: list[str]) -> int:
    schedules = int(argv[0])
    config = AgentConfig.from_env(os.environ)
    niceness = lower_cpu_priority(config.worker_nice)
    database = Database(config.database_url, PoolSettings(1, 4), name="bench-scheduler").open()
    try:
        timed = TimedTransactions(database)
        runtime = SimpleNamespace(db=timed)
        print("ready", flush=True)
        sys.stdin.readline()  # the minute
        cpu_began, began = time.process_time(), time.time()
        started, ticks = 0, 0
        while started < schedules:
            tick_at = time.monotonic()
            started += scheduler.fire_due_schedules(runtime, datetime.now(UTC))  # type: ignore[arg-type]
            ticks += 1
            if started < schedules:
                time.sleep(max(0.0, tick_at + 60 - time.monotonic()))
        print(json.dumps({"started": started, "ticks": ticks, "cpu_s": time.process_time() - cpu_began,
                          "seconds": time.time() - began, "transaction_s": timed.seconds, "niceness": niceness}),
              flush=True)
    finally:
        database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
