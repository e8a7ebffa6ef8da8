"""WORKER_NICE: a worker puts itself, every thread of it, and its own session's group behind the intake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Run in a process of its own (its own session, as `hapex run` starts a worker): a niceness, once
# raised, cannot be lowered again without privilege, and the test's own process must keep its own.
PROBE = """
import json, os, threading
started = threading.Event()
stop = threading.Event()
def pool_thread():
    started.set()
    stop.wait()
thread = threading.Thread(target=pool_thread)
thread.start()
started.wait()
from agent_service.worker import lower_cpu_priority
result = lower_cpu_priority({niceness})
threads = sorted({{os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}})
try:
    group = open("/proc/self/autogroup").read().split()[-1]
except OSError:
    group = None
stop.set()
print(json.dumps({{"result": result, "threads": threads, "group": group}}))
"""


def probe(niceness: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(niceness=niceness)], capture_output=True, text=True,
                         check=True, start_new_session=True, timeout=60)
    return json.loads(out.stdout)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only")
def test_a_worker_lowers_every_thread_it_has_and_its_sessions_group():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    wanted = max(start, 12)
    seen = probe(12)
    assert seen["result"] == wanted
    assert seen["threads"] == [wanted]  # the thread started before it too
    if seen["group"] is not None:
        assert int(seen["group"]) >= 12


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only")
def test_a_worker_never_raises_its_priority():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    assert probe(0)["threads"] == [start]
