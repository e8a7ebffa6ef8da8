"""What every benchmark stands on: a PostgreSQL server, fresh databases, TLS, processes.

The server is the embedded PostgreSQL in .data/bench-postgres (its own, so a benchmark
never shares a server with `make run` or the tests), or BENCH_DATABASE_URL: an owner's
DSN that may create databases and, like TEST_DATABASE_URL, reach the service roles by
local trust authentication.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import certifi
import psycopg
from psycopg import sql

from hapex.localstack import embedded_db
from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from shared.db.migrate import apply_migrations

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / ".data"
BENCH_DIR = DATA / "bench"
PGDATA = DATA / "bench-postgres"
# The no-op task only the benchmark's workers register (tests/bench/bench_worker.py).
NOOP_TASK = "bench_noop"


@dataclass(frozen=True)
class BenchDatabase:
    """One benchmark's database, as the owner and as each service role."""

    name: str
    owner_dsn: str

    @property
    def intake_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_intake")

    @property
    def agent_dsn(self) -> str:
        return embedded_db.as_role(self.owner_dsn, "hapex_agent")


@dataclass
class BenchServer:
    """The PostgreSQL server the benchmarks create their databases on."""

    dsn: str
    embedded: bool
    started_here: bool

    @classmethod
    def start(cls) -> BenchServer:
        configured = os.environ.get("BENCH_DATABASE_URL", "").strip()
        if configured:
            return cls(configured, embedded=False, started_here=False)
        was_running = (PGDATA / "postmaster.pid").exists()
        dsn = embedded_db.ensure_running(PGDATA.resolve(), database="postgres")
        return cls(dsn, embedded=True, started_here=not was_running)

    def stop(self) -> None:
        if self.embedded and self.started_here:
            embedded_db.stop(PGDATA.resolve())

    def postmaster(self) -> int | None:
        """The server's postmaster process, whose children are its backends (None if not on this machine)."""
        from tests.bench.bench_cpu import parent_pid

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid(), inet_server_addr() IS NULL").fetchone()
        if row is None or not row[1]:  # a TCP connection may be to another machine
            return None
        return parent_pid(int(row[0]))

    def renice(self, niceness: int) -> None:
        """The server's postmaster and its processes at this niceness; new backends inherit it."""
        from tests.bench.bench_cpu import children

        postmaster = self.postmaster()
        if postmaster is None:
            return
        for pid in [postmaster, *children(postmaster)]:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, niceness)
            except OSError:
                continue

    def settings(self) -> dict[str, str]:
        """The server settings that bound the figures (fsync, pool sizes, version)."""
        names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return {name: str(conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0])
                    for name in names}

    @contextmanager
    def fresh_database(self, purpose: str) -> Iterator[BenchDatabase]:
        """A newly migrated database, dropped afterwards."""
        name = f"hapex_bench_{purpose}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        database = BenchDatabase(name, embedded_db.with_database(self.dsn, name))
        try:
            apply_migrations(database.owner_dsn)
            yield database
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def local_tls() -> LocalTLS:
    return ensure_local_tls(BENCH_DIR / "tls")


def outbound_ca_bundle(tls: LocalTLS) -> Path:
    """certifi's bundle plus the benchmark's CA: what production loads, and the stand-in trusted."""
    path = BENCH_DIR / "outbound-ca.pem"
    path.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + tls.ca_cert.read_bytes())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_environment() -> dict[str, str]:
    """The operator's environment without any Hapex setting that could leak into a run."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_", "DATABASE_URL", "WORKER_"))}


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "ab")  # noqa: SIM115 - the child holds it
    try:
        return subprocess.Popen([sys.executable, *argv], env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=REPO_ROOT)
    finally:
        handle.close()


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,  # noqa: S607
                             check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_dirty() -> bool:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,  # noqa: S607
                             capture_output=True, text=True, check=True, timeout=10)
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return False
