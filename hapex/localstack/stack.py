"""`hapex run`: the whole local stack in the foreground, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import certifi
import requests

from hapex.localstack import embedded_db, mail_catcher
from hapex.localstack.local_secrets import ensure_local_secrets
from hapex.localstack.local_tls import ensure_local_tls
from hapex.localstack.paths import data_dir
from hapex.settings import LauncherSettings
from shared.db.migrate import apply_migrations


@dataclass(frozen=True)
class LocalDatabase:
    owner_dsn: str
    embedded_pgdata: Path | None


def embedded_pgdata(settings: LauncherSettings) -> Path:
    return data_dir(settings.data_dir) / "postgres"


def local_database(settings: LauncherSettings) -> LocalDatabase:
    """DATABASE_URL when set, else the embedded server (started if needed)."""
    if settings.database_url:
        return LocalDatabase(settings.database_url, None)
    pgdata = embedded_pgdata(settings)
    return LocalDatabase(embedded_db.ensure_running(pgdata), pgdata)


def local_environment(database: LocalDatabase, settings: LauncherSettings) -> dict[str, str]:
    """The environment the local services run with: what the operator set wins."""
    env = dict(settings.environ)
    secrets = ensure_local_secrets(data_dir(settings.data_dir))
    for name, value in secrets.items():
        env.setdefault(name, value)
    tls = ensure_local_tls(data_dir(settings.data_dir) / "tls")
    intake_port = settings.ports["intake"]
    agent_port = settings.ports["agent"]
    env["INTAKE_PORT"] = str(intake_port)
    env["AGENT_PORT"] = str(agent_port)
    env.setdefault("DATABASE_URL", database.owner_dsn)
    env.setdefault("INTAKE_DATABASE_URL", embedded_db.as_role(database.owner_dsn, "hapex_intake"))
    env.setdefault("AGENT_DATABASE_URL", embedded_db.as_role(database.owner_dsn, "hapex_agent"))
    env.setdefault("TLS_CERT_FILE", str(tls.server_cert))
    env.setdefault("TLS_KEY_FILE", str(tls.server_key))
    env.setdefault("AGENT_SERVICE_CA", str(tls.ca_cert))
    env.setdefault("AGENT_SERVICE_URL", f"https://localhost:{agent_port}")
    env.setdefault("INTAKE_PUBLIC_URL", f"https://localhost:{intake_port}")
    env.setdefault("HAPEX_BIND_HOST", "127.0.0.1")
    if settings.sandbox:
        env.update(sandbox_environment(settings, env, tls.ca_cert))
    if "HAPEX_SMTP_HOST" not in env:
        # No SMTP server of the developer's own: mail is caught locally (hapex.localstack.mail_catcher).
        env["HAPEX_LOCAL_MAIL_DIR"] = str(data_dir(settings.data_dir) / "mail")
        env.update(HAPEX_SMTP_HOST="127.0.0.1", HAPEX_SMTP_FROM=mail_catcher.LOCAL_SENDER, HAPEX_SMTP_STARTTLS="false")
        env.setdefault("HAPEX_SMTP_PORT", str(mail_catcher.DEFAULT_PORT))
    return env


def sandbox_environment(settings: LauncherSettings, env: dict[str, str], ca_cert: Path) -> dict[str, str]:
    """The sandbox's own settings, and each provider the operator left alone pointed at it."""
    from hapex.sandbox import wiring

    port = settings.ports["sandbox"]
    base_url = f"https://localhost:{port}"
    sandbox_dir = data_dir(settings.data_dir) / "sandbox"
    sandbox_dir.mkdir(mode=0o700, exist_ok=True)
    # Outbound calls trust the public CAs (for providers the operator set up) and the local one.
    bundle = sandbox_dir / "outbound-ca.pem"
    bundle.write_bytes(Path(env.get("HAPEX_OUTBOUND_CA_BUNDLE") or certifi.where()).read_bytes()
                       + b"\n" + ca_cert.read_bytes())
    extra = wiring.sandbox_environment(base_url, env["HAPEX_SANDBOX_SECRET"], settings.environ)
    extra.update(HAPEX_SANDBOX_URL=base_url, HAPEX_SANDBOX_PORT=str(port))
    extra.setdefault("HAPEX_SANDBOX_STATE_FILE", str(sandbox_dir / "state.json"))
    chosen = {name: value for name, value in extra.items() if not settings.environ.get(name)}
    # The operator's own bundle, if any, is inside this one.
    chosen["HAPEX_OUTBOUND_CA_BUNDLE"] = str(bundle)
    return chosen


# The intake's environment is built from an allowlist: what it reads, and what a Python
# process needs to run. Anything else in the developer's shell stays out.
INTAKE_ALLOWED = re.compile(
    r"^(INTAKE_\w+|AGENT_SERVICE_(URL|CA|TOKEN)|TLS_(CERT|KEY)_FILE|HAPEX_BIND(_HOST)?|HAPEX_SERVICE"
    r"|HAPEX_TEST_MODE|HAPEX_DATA_DIR|WEB_CONCURRENCY|GUNICORN_THREADS|LOG_LEVEL|LOG_FORMAT|TRUSTED_PROXY_COUNT"
    r"|TLS_TERMINATION"
    r"|HAPEX_[A-Z0-9]+_(CLIENT_ID|AUTHORIZATION_URL|TOKEN_URL|REVOCATION_URL|API_BASE_URL|ISSUER|NAME)"
    r"|PATH|HOME|USER|LANG|LC_\w+|TZ|TMPDIR|PYTHON\w*|VIRTUAL_ENV)$"
)
# What the agent and workers never need of the intake's (or of the sandbox's).
AGENT_NEVER = ("INTAKE_SESSION_SECRET", "INTAKE_DATABASE_URL", "DATABASE_URL", "HAPEX_SANDBOX_SECRET")
# The sandbox gets only what it reads, and what a Python process needs to run.
SANDBOX_ALLOWED = re.compile(
    r"^(HAPEX_SANDBOX_\w+|INTAKE_PUBLIC_URL|HAPEX_BIND_HOST|TLS_(CERT|KEY)_FILE|LOG_LEVEL"
    r"|PATH|HOME|USER|LANG|LC_\w+|TZ|TMPDIR|PYTHON\w*|VIRTUAL_ENV)$"
)
# The mail catcher needs nothing of Hapex's.
MAIL_ALLOWED = re.compile(r"^(PATH|HOME|USER|LANG|LC_\w+|TZ|TMPDIR|PYTHON\w*|VIRTUAL_ENV)$")
# Secrets whose mere presence makes `hapex serve intake` refuse to start.
INTAKE_REFUSES = re.compile(
    r"^(CREDENTIAL_ENCRYPTION_KEY\w*|AGENT_ADMIN_TOKEN|ANTHROPIC_API_KEY|HAPEX_SMTP_PASSWORD"
    r"|HAPEX_[A-Z0-9]+_CLIENT_SECRET)$"
)


def environment_for(service: str, env: dict[str, str]) -> dict[str, str]:
    """The part of the local environment one service may see."""
    if service == "intake":
        return {k: v for k, v in env.items() if INTAKE_ALLOWED.match(k)}
    if service == "sandbox":
        # Whatever host the intake and agent are bound to, the sandbox listens on this machine only.
        return {**{k: v for k, v in env.items() if SANDBOX_ALLOWED.match(k)}, "HAPEX_BIND_HOST": "127.0.0.1"}
    if service == "mail":
        return {k: v for k, v in env.items() if MAIL_ALLOWED.match(k)}
    return {k: v for k, v in env.items() if k not in AGENT_NEVER}


def wait_until_healthy(url: str, ca_file: str, deadline: float, processes: list[subprocess.Popen[bytes]]) -> bool:
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            response = requests.get(url, verify=ca_file, timeout=2)
            if response.status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


@dataclass(frozen=True)
class Child:
    """One process `hapex run` starts and keeps running: a new service is one more entry in children()."""

    name: str
    argv: list[str]
    env: dict[str, str]
    # Waited for (HTTP 200) before the stack says it is up.
    health_url: str | None = None
    # How long it may take to stop after SIGTERM (a worker finishing its step) before it is killed.
    stop_seconds: float = 25.0


# Exit status of `hapex serve` on a configuration error: restarting cannot fix that.
CONFIGURATION_ERROR = 2


def children(env: dict[str, str], workers: int, *, sandbox: bool = False) -> list[Child]:
    """The local stack's processes, each with the environment it may see."""
    serve = [sys.executable, "-m", "hapex.cli", "serve"]
    intake_url = f"https://localhost:{env['INTAKE_PORT']}"
    agent_url = f"https://localhost:{env['AGENT_PORT']}"
    worker_stop = float(env.get("WORKER_GRACE_SECONDS", "45")) + 10
    return [
        Child("intake", [*serve, "intake"], environment_for("intake", env), health_url=intake_url + "/healthz"),
        Child("agent", [*serve, "agent"], environment_for("agent", env), health_url=agent_url + "/healthz"),
        *(Child(f"worker {n}" if workers > 1 else "worker", [*serve, "worker"], environment_for("worker", env),
                stop_seconds=worker_stop) for n in range(1, workers + 1)),
        *([Child("sandbox", [sys.executable, "-m", "hapex.cli", "sandbox"], environment_for("sandbox", env),
                 health_url=env["HAPEX_SANDBOX_URL"] + "/healthz")] if sandbox else []),
        # The mail catcher, unless the developer has an SMTP server of their own (local_environment).
        *([Child("mail", [sys.executable, "-m", "hapex.localstack.mail_catcher",
                          "--dir", env["HAPEX_LOCAL_MAIL_DIR"], "--port", env["HAPEX_SMTP_PORT"]],
                 environment_for("mail", env))] if "HAPEX_LOCAL_MAIL_DIR" in env else []),
    ]


class Supervised:
    """A child process, restarted with backoff (1 s doubling to 30 s) when it dies unexpectedly."""

    # A child that ran this long before dying starts its backoff from the beginning again.
    STABLE_AFTER = 60.0

    def __init__(self, child: Child) -> None:
        self.child = child
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None

    def start(self) -> None:
        # Its own session: the terminal's Ctrl-C reaches `hapex run` alone, which then stops each child
        # with one SIGTERM, so a worker's graceful stop is not cut short by a second signal.
        # Our own interpreter and a fixed argument list: nothing here comes from input.
        self.process = subprocess.Popen(self.child.argv, env=self.child.env, start_new_session=True)  # noqa: S603
        self.started_at = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def watch(self, now: float) -> str | None:
        """Restart the child if it is due; a plain line saying what happened, if anything did."""
        if self.restart_at is not None:
            if now < self.restart_at:
                return None
            self.start()
            return f"hapex: {self.child.name} restarted"
        if self.process is None or self.process.poll() is None:
            return None
        if now - self.started_at > self.STABLE_AFTER:
            self.failures = 0
        self.failures += 1
        delay = min(30.0, 2.0 ** (self.failures - 1))
        self.restart_at = now + delay
        return f"hapex: {self.child.name} exited (status {self.process.returncode}); restarting it in {delay:.0f} s"

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=self.child.stop_seconds)
        except subprocess.TimeoutExpired:
            print(f"hapex: {self.child.name} did not stop in {self.child.stop_seconds:.0f} s; killing it",
                  file=sys.stderr, flush=True)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def progress(line: str) -> None:
    print(f"hapex: {line}", flush=True)


def hold_stack_lock(settings: LauncherSettings) -> IO[str] | None:
    """The data dir's run lock, held for the life of this process; None when another stack holds it."""
    path = data_dir(settings.data_dir) / "hapex-run.lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        print(f"hapex: a stack is already running from {path.parent} ({handle.read().strip() or 'starting'}); "
              "stop it with Ctrl-C where it runs, or start this one with another HAPEX_DATA_DIR and ports",
              file=sys.stderr, flush=True)
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, intake https://localhost:{settings.ports['intake']}")
    handle.flush()
    return handle


def run_stack(settings: LauncherSettings, workers: int = 1) -> int:
    lock = hold_stack_lock(settings)
    if lock is None:
        return 1
    progress("starting the database" + (" (DATABASE_URL)" if settings.database_url else
                                        f" (embedded PostgreSQL in {embedded_pgdata(settings)})"))
    database = local_database(settings)
    env = local_environment(database, settings)
    applied = apply_migrations(env["DATABASE_URL"])
    progress(f"migrations: {len(applied)} applied" if applied else "migrations: the database is up to date")
    supervised = [Supervised(child) for child in children(env, workers, sandbox=settings.sandbox)]
    progress("starting " + ", ".join(each.child.name for each in supervised))
    for each in supervised:
        each.start()

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            print("hapex: already stopping; workers are finishing the step in flight", flush=True)
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + 60
    processes = [each.process for each in supervised if each.process is not None]
    healthy = all(
        wait_until_healthy(each.child.health_url, env["AGENT_SERVICE_CA"], deadline, processes)
        for each in supervised if each.child.health_url
    )
    exit_code = 0
    if healthy:
        print(f"hapex: intake  https://localhost:{env['INTAKE_PORT']}", flush=True)
        print(f"hapex: agent   https://localhost:{env['AGENT_PORT']}  (bearer AGENT_SERVICE_TOKEN)", flush=True)
        if settings.sandbox:
            print(f"hapex: sandbox {env['HAPEX_SANDBOX_URL']}  (stand-in providers and Claude; HAPEX_SANDBOX=0 turns "
                  "it off)", flush=True)
        print(f"hapex: {workers} worker(s) running; CA for local TLS: {env['AGENT_SERVICE_CA']}", flush=True)
        print("hapex: press Ctrl-C to stop", flush=True)
        exit_code = _supervise(supervised, lambda: stopping)
    else:
        print("hapex: the services did not become healthy; stopping", file=sys.stderr, flush=True)
        exit_code = 1

    print("hapex: stopping", flush=True)
    for each in supervised:
        each.stop()
    for each in supervised:
        each.wait_stopped()
    if database.embedded_pgdata is not None:
        embedded_db.stop(database.embedded_pgdata)
    print("hapex: stopped", flush=True)
    return exit_code


def _supervise(supervised: list[Supervised], stopping: Callable[[], bool]) -> int:
    """Until Ctrl-C: restart what dies; only a configuration error (which no restart fixes) ends the stack."""
    while not stopping():
        for each in supervised:
            if each.process is not None and each.process.poll() == CONFIGURATION_ERROR:
                print(f"hapex: {each.child.name} refused its configuration; stopping the stack",
                      file=sys.stderr, flush=True)
                return 1
            line = each.watch(time.monotonic())
            if line:
                print(line, file=sys.stderr, flush=True)
        time.sleep(0.5)
    return 0
