"""The intake under concurrent keep-alive TLS load, served as `make run` serves it.

`hapex serve intake` (gunicorn, its configuration's default workers and threads, TLS) on
a fresh database; a client signs up through the real form, a few automations are added,
then the page a signed-in client lands on and /healthz are each loaded for a while by wrk
(when installed) or by tests.bench.bench_load over several processes. Before and after,
the page is fetched once to prove the session still opens it (a redirect to the login page
would otherwise count as a fast answer).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests

from hapex.localstack.local_secrets import new_token
from shared.automations.repository import create_automation, set_status
from shared.db import Database, tenant_transaction
from tests.bench import bench_cpu
from tests.bench.bench_setup import (
    REPO_ROOT,
    BenchDatabase,
    BenchServer,
    base_environment,
    free_port,
    local_tls,
    start_process,
    stop_processes,
    wait_until,
)
from tests.bench.bench_stats import percentile, rounded

SESSION_COOKIE = "__Host-hapex_session"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _sign_up(base: str, ca_file: str, owner_dsn: str) -> tuple[str, str]:
    """A new client's session cookie and the page it may open: sign up through the form, then a session
    of that user written as the database owner. The log-in itself is the agent's (it alone checks
    passwords and starts sessions, docs/client-proof.md), and this bench serves the intake alone."""
    browser = requests.Session()
    email, password = f"bench-{uuid.uuid4().hex[:10]}@example.com", "a long bench passphrase " + new_token()
    form = browser.get(f"{base}/signup", verify=ca_file, timeout=30)
    match = _CSRF.search(form.text)
    if form.status_code != 200 or not match:
        raise RuntimeError(f"the sign-up form did not load ({form.status_code})")
    # A browser's Referer: Flask-WTF checks it on HTTPS.
    answer = browser.post(f"{base}/signup", verify=ca_file, timeout=60, allow_redirects=False,
                          headers={"Referer": f"{base}/signup"},
                          data={"csrf_token": match.group(1) or match.group(2), "business_name": "Bench Bakery",
                                "email": email, "password": password})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-up failed ({answer.status_code})")
    secret = secrets.token_urlsafe(32)
    with psycopg.connect(owner_dsn) as owner:
        row = owner.execute("SELECT client_id, user_id FROM users WHERE email = %s", [email]).fetchone()
        if row is None:
            raise RuntimeError("sign-up made no user")
        owner.execute("INSERT INTO sessions (client_id, session_hash, user_id, expires_at) "
                      "VALUES (%s, %s, %s, now() + interval '12 hours')",
                      [row[0], hashlib.sha256(secret.encode()).digest(), row[1]])
    return secret, "/automations"


def _page_opens(url: str, cookie: str, ca_file: str) -> bool:
    answer = requests.get(url, cookies={SESSION_COOKIE: cookie}, verify=ca_file, timeout=30, allow_redirects=False)
    return answer.status_code == 200


def _wrk(url: str, cookie: str | None, seconds: float, connections: int) -> dict[str, Any]:
    threads = max(1, min(2, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {SESSION_COOKIE}={cookie}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout  # noqa: S603
    percentiles = {p: float(v) * UNIT_MS[u] for p, v, u in _WRK_PERCENTILE.findall(out)}
    non_2xx = _WRK_NON_2XX.search(out)
    socket_errors = _WRK_ERRORS.search(out)
    total = _WRK_TOTAL.search(out)
    return {
        "requests": int(total.group(1)) if total else None,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups()))
                                                                 if socket_errors else 0),
        "requests_per_s": rounded(float(_WRK_RATE.search(out).group(1)) if _WRK_RATE.search(out) else None, 1),
        "latency_ms_p50": rounded(percentiles.get("50"), 2),
        "latency_ms_p99": rounded(percentiles.get("99"), 2),
    }


def _python_load(url: str, ca_file: str, cookie: str | None, seconds: float, connections: int,
                 processes: int) -> dict[str, Any]:
    headers = [f"Cookie: {SESSION_COOKIE}={cookie}"] if cookie else []
    share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    started = time.monotonic()
    children = [subprocess.Popen([sys.executable, "-m", "tests.bench.bench_load", url, ca_file, str(seconds),  # noqa: S603
                                  str(n), *headers], stdout=subprocess.PIPE, cwd=REPO_ROOT)
                for n in share if n]
    results = [json.loads(child.communicate(timeout=seconds + 60)[0]) for child in children]
    elapsed = time.monotonic() - started
    latencies = [value for result in results for value in result["latencies_ms"]]
    total = sum(result["requests"] for result in results)
    return {
        "requests": total,
        "errors": sum(result["errors"] for result in results),
        # Each process stops sending at its deadline; the slowest answer is over within a request's time.
        "requests_per_s": rounded(total / min(elapsed, seconds + 0.5), 1),
        "latency_ms_p50": rounded(percentile(latencies, 50), 2),
        "latency_ms_p99": rounded(percentile(latencies, 99), 2),
    }


@dataclass
class ServedIntake:
    """The intake as `make run` serves it, and a signed-in client's session on it."""

    base: str
    cookie: str
    page: str
    ca_file: str
    pid: int

    def load_until(self, stop: threading.Event, connections: int, gap_ms: float, window: float = 1.0
                   ) -> dict[str, Any]:
        """The signed-in page over `connections` keep-alive connections (one load process), each asking for
        it every `gap_ms`, until `stop`."""
        latencies: list[float] = []
        requests_made = errors = 0
        began = time.monotonic()
        while not stop.is_set():
            child = subprocess.run([sys.executable, "-m", "tests.bench.bench_load", f"--gap-ms={gap_ms}",  # noqa: S603
                                    self.base + self.page, self.ca_file, str(window), str(connections),
                                    f"Cookie: {SESSION_COOKIE}={self.cookie}"],
                                   capture_output=True, cwd=REPO_ROOT, timeout=window + 60, check=True)
            result = json.loads(child.stdout)
            latencies += result["latencies_ms"]
            requests_made += result["requests"]
            errors += result["errors"]
        elapsed = time.monotonic() - began
        return {"connections": connections, "every_ms": gap_ms, "requests": requests_made, "errors": errors,
                "requests_per_s": rounded(requests_made / elapsed, 1) if elapsed else None,
                "latency_ms_p50": rounded(percentile(latencies, 50), 2),
                "latency_ms_p99": rounded(percentile(latencies, 99), 2)}


@contextlib.contextmanager
def serving(server: BenchServer, database: BenchDatabase, log_dir: Path, automations: int = 5
            ) -> Iterator[ServedIntake]:
    """`hapex serve intake` on the database, a client signed up through the form with a few automations."""
    tls = local_tls()
    ca_file = str(tls.ca_cert)
    port = free_port()
    base = f"https://localhost:{port}"
    env = base_environment()
    env.update(
        INTAKE_DATABASE_URL=database.intake_dsn,
        INTAKE_SESSION_SECRET=new_token(),
        AGENT_SERVICE_TOKEN=new_token(),
        AGENT_SERVICE_URL=f"https://localhost:{free_port()}",
        AGENT_SERVICE_CA=ca_file,
        TLS_CERT_FILE=str(tls.server_cert),
        TLS_KEY_FILE=str(tls.server_key),
        INTAKE_PORT=str(port),
        HAPEX_BIND_HOST="127.0.0.1",
        LOG_LEVEL="INFO",
    )
    intake = start_process(["-m", "hapex.cli", "serve", "intake"], env, log_dir / f"intake-{port}.log")
    try:
        def healthy() -> bool:
            if intake.poll() is not None:
                raise RuntimeError(f"the intake exited with {intake.returncode}; see {log_dir}")
            try:
                return requests.get(f"{base}/healthz", verify=ca_file, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 60, "the intake to answer /healthz", 0.2)
        cookie, page = _sign_up(base, ca_file, database.owner_dsn)
        intake_db = Database(database.intake_dsn, name="bench-intake").open()
        try:
            with psycopg.connect(database.owner_dsn) as owner:
                row = owner.execute("SELECT client_id FROM clients WHERE client_id NOT IN "
                                    "(SELECT client_id FROM automations) ORDER BY created_at DESC LIMIT 1").fetchone()
            assert row is not None
            client_id = row[0]
            for index in range(automations):
                definition = {"name": f"Bench automation {index}", "trigger": {"kind": "manual"},
                              "steps": [{"capability": "webhook.post", "input": {
                                  "url": "https://hooks.example.com/bench", "payload": {"n": index}}}]}
                with tenant_transaction(intake_db, client_id) as conn:
                    automation_id = create_automation(conn, client_id=client_id, definition=definition)
                    set_status(conn, automation_id=automation_id, status="enabled")
        finally:
            intake_db.close()
        if not _page_opens(base + page, cookie, ca_file):
            raise RuntimeError(f"the signed-in page {page} did not open with the session")
        yield ServedIntake(base, cookie, page, ca_file, intake.pid)
    finally:
        stop_processes([intake])


def run(server: BenchServer, *, seconds: float, connections: int, log_dir: Path, automations: int = 5
        ) -> dict[str, Any]:
    with server.fresh_database("intake") as database, serving(server, database, log_dir, automations) as served:
        base, cookie, page, ca_file = served.base, served.cookie, served.page, served.ca_file
        generator = "wrk" if shutil.which("wrk") else "python http.client (wrk not installed)"
        results: dict[str, Any] = {"load_generator": generator, "connections": connections,
                                   "seconds": seconds, "page_path": page,
                                   "gunicorn": "hapex serve intake: WEB_CONCURRENCY and GUNICORN_THREADS "
                                               "at their defaults, as make run"}
        for name, path, with_cookie in (("healthz", "/healthz", False), ("page", page, True)):
            url = base.replace("localhost", "127.0.0.1") + path if generator == "wrk" else base + path
            gunicorn_pids = _process_tree(served.pid)
            before = bench_cpu.snapshot({"intake": gunicorn_pids}, server.postmaster())
            began = time.monotonic()
            if generator == "wrk":
                figures = _wrk(url, cookie if with_cookie else None, seconds, connections)
            else:
                figures = _python_load(url, ca_file, cookie if with_cookie else None, seconds, connections,
                                       processes=2)
            elapsed = time.monotonic() - began
            cpu = bench_cpu.usage(before, bench_cpu.snapshot({"intake": gunicorn_pids}, server.postmaster()),
                                  elapsed)
            figures["cpu_cores"] = cpu
            if cpu and figures["requests"]:
                # What one request cost the intake and PostgreSQL: N cores serve at most N * 1000 / this.
                figures["cpu_ms_per_request"] = {
                    name: round(cpu[name] * elapsed * 1000 / figures["requests"], 3)
                    for name in ("intake", "postgres")}
            results[name] = figures
        if not _page_opens(base + page, cookie, ca_file):
            raise RuntimeError("after the load the session no longer opened the page")
        return results


def _process_tree(root: int) -> list[int]:
    """A process and its children (gunicorn's arbiter and workers)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == root:
                pids.append(int(entry.name))
    return pids
