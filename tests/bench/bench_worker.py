"""The benchmark's worker process: `hapex serve worker` plus one no-op task.

The no-op task measures the bare queue (procrastinate on the same database, same queue,
same concurrency, same thread hop for a sync task) so that the run engine's throughput can
be given as a ratio to its floor. It is registered only here, in the benchmark's own
process; the product's workers never know it.
"""

from __future__ import annotations

import sys

from agent_service import jobs
from tests.bench.bench_setup import NOOP_TASK


@jobs.tasks.task(name=NOOP_TASK, queue="runs", pass_context=False)
def bench_noop(n: int) -> int:
    """Nothing: what a job costs the queue alone."""
    return n


# `--no-scheduler`: the 08:00 rush benchmark runs the scheduler in its own process, to measure it alone.
NO_SCHEDULER = "--no-scheduler"


def main() -> int:
    if NO_SCHEDULER in sys.argv[1:]:
        jobs.tasks.periodic_registry.periodic_tasks.pop(("fire_due_schedules", "fire_due_schedules"))
    # Imported up front so that no measured run pays for the first import of the engine.
    import agent_service.capabilities.registry  # noqa: F401
    import agent_service.runs.engine  # noqa: F401
    from hapex.cli import main as hapex_main

    return hapex_main(["serve", "worker"])


if __name__ == "__main__":
    sys.exit(main())
