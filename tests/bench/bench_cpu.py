"""Where the machine's CPU went during a measurement: workers, PostgreSQL, the stand-in, the rest.

Read from /proc (Linux), so a figure can say what bounded it; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores."""
    try:
        fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _process_ticks(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _parent(pid_dir: Path) -> int | None:
    try:
        return int((pid_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _postgres_pids(postmaster: int | None) -> list[int]:
    """The benchmark server's postmaster and its children; without one, every process named postgres."""
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if postmaster is not None:
            if pid == postmaster or _parent(entry) == postmaster:
                pids.append(pid)
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                pids.append(pid)
        except OSError:
            continue
    return pids


def children(pid: int) -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit() and _parent(entry) == pid]


def parent_pid(pid: int) -> int | None:
    return _parent(PROC / str(pid))


@dataclass
class CpuSnapshot:
    machine: tuple[int, int] | None
    groups: dict[str, int]


def snapshot(groups: dict[str, list[int]], postmaster: int | None = None) -> CpuSnapshot:
    """CPU ticks so far of each group of processes, and of the benchmark's PostgreSQL."""
    ticks = {name: sum(_process_ticks(pid) for pid in pids) for name, pids in groups.items()}
    ticks["postgres"] = sum(_process_ticks(pid) for pid in _postgres_pids(postmaster))
    return CpuSnapshot(_machine_ticks(), ticks)


def usage(before: CpuSnapshot, after: CpuSnapshot, seconds: float) -> dict[str, float] | None:
    """Cores used on average by each group, and by the whole machine, between two snapshots."""
    if before.machine is None or after.machine is None or seconds <= 0:
        return None
    cores = {name: round((after.groups[name] - before.groups.get(name, 0)) / TICKS / seconds, 2)
             for name in after.groups}
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    machine_cores = os.cpu_count() or 1
    busy_cores = busy / total * machine_cores if total else 0.0
    # Whatever else ran meanwhile (another session's tests, say) competed for the same cores.
    cores["everything_else"] = round(max(0.0, busy_cores - sum(cores.values())), 2)
    cores["machine_busy_fraction"] = round(busy / total, 3) if total else 0.0
    return cores
