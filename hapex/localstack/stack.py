"""`hapex run`: the whole local stack in the foreground, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from hapex.localstack import embedded_db
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
    return env


# The intake's environment is built from an allowlist: what it reads, and what a Python
# process needs to run. Anything else in the developer's shell stays out.
INTAKE_ALLOWED = re.compile(
    r"^(INTAKE_\w+|AGENT_SERVICE_(URL|CA|TOKEN)|TLS_(CERT|KEY)_FILE|HAPEX_BIND(_HOST)?|HAPEX_SERVICE"
    r"|HAPEX_TEST_MODE|HAPEX_DATA_DIR|WEB_CONCURRENCY|GUNICORN_THREADS|LOG_LEVEL|TRUSTED_PROXY_COUNT"
    r"|HAPEX_[A-Z0-9]+_(CLIENT_ID|AUTHORIZATION_URL|TOKEN_URL|REVOCATION_URL|API_BASE_URL|ISSUER)"
    r"|PATH|HOME|USER|LANG|LC_\w+|TZ|TMPDIR|PYTHON\w*|VIRTUAL_ENV)$"
)
# What the agent and workers never need of the intake's.
AGENT_NEVER = ("INTAKE_SESSION_SECRET", "INTAKE_DATABASE_URL", "DATABASE_URL")
# Secrets whose mere presence makes `hapex serve intake` refuse to start.
INTAKE_REFUSES = re.compile(
    r"^(CREDENTIAL_ENCRYPTION_KEY\w*|AGENT_ADMIN_TOKEN|ANTHROPIC_API_KEY|HAPEX_SMTP_PASSWORD"
    r"|HAPEX_[A-Z0-9]+_CLIENT_SECRET)$"
)


def environment_for(service: str, env: dict[str, str]) -> dict[str, str]:
    """The part of the local environment one service may see."""
    if service == "intake":
        return {k: v for k, v in env.items() if INTAKE_ALLOWED.match(k)}
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


def run_stack(settings: LauncherSettings, workers: int = 1) -> int:
    database = local_database(settings)
    env = local_environment(database, settings)
    apply_migrations(env["DATABASE_URL"])
    command = [sys.executable, "-m", "hapex.cli", "serve"]
    services = ["intake", "agent"] + ["worker"] * workers
    # Our own interpreter and a fixed argument list: nothing here comes from input.
    processes = [subprocess.Popen([*command, service], env=environment_for(service, env))  # noqa: S603
                 for service in services]

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    urls = {
        "intake": f"https://localhost:{env['INTAKE_PORT']}",
        "agent": f"https://localhost:{env['AGENT_PORT']}",
    }
    deadline = time.monotonic() + 60
    healthy = all(
        wait_until_healthy(url + "/healthz", env["AGENT_SERVICE_CA"], deadline, processes)
        for url in urls.values()
    )
    exit_code = 0
    if healthy:
        print(f"hapex: intake  {urls['intake']}", flush=True)
        print(f"hapex: agent   {urls['agent']}  (bearer AGENT_SERVICE_TOKEN)", flush=True)
        print(f"hapex: {workers} worker(s) running; CA for local TLS: {env['AGENT_SERVICE_CA']}", flush=True)
        print("hapex: press Ctrl-C to stop", flush=True)
        while not stopping:
            if any(p.poll() is not None for p in processes):
                print("hapex: a service exited; stopping the stack", file=sys.stderr, flush=True)
                exit_code = 1
                break
            time.sleep(0.5)
    else:
        print("hapex: the services did not become healthy; stopping", file=sys.stderr, flush=True)
        exit_code = 1

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
    if database.embedded_pgdata is not None:
        embedded_db.stop(database.embedded_pgdata)
    print("hapex: stopped", flush=True)
    return exit_code
