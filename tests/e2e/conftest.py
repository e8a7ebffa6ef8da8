"""Both services running under gunicorn over real TLS, and a real headless browser.

The stack is started once per session with `hapex serve intake|agent` on free loopback
ports, against its own migrated database, with a certificate authority made for the run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from hapex.localstack.local_secrets import new_encryption_key, new_token
from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from hapex.localstack.stack import environment_for
from tests.conftest import TestDatabase, create_database_from, drop_database
from tests.provider_standin import ProviderStandIn

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# OAuth providers the live stack is registered with, every one pointed at the stand-in.
STANDIN_OAUTH_PROVIDERS = ("google", "slack", "notion")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float = 180.0, interval: float = 0.2):
    """The predicate's first truthy value; the timeout only bounds a hang (a busy machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def wait_for_health(url: str, ca_file: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before becoming healthy")
        try:
            if requests.get(url, verify=ca_file, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy in {timeout}s")


@dataclass
class LiveStack:
    """The running intake and agent, with what a test needs to talk to them."""

    intake_url: str
    agent_url: str
    tls: LocalTLS
    env: dict[str, str]
    database: TestDatabase
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ca_file(self) -> str:
        return str(self.tls.ca_cert)

    def logs(self) -> str:
        """Everything the services have logged so far (for hunting canaries)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def agent_headers(self, *, admin: bool = False) -> dict[str, str]:
        token = self.env["AGENT_ADMIN_TOKEN" if admin else "AGENT_SERVICE_TOKEN"]
        return {"Authorization": f"Bearer {token}"}


def stack_environment(database: TestDatabase, tls: LocalTLS, intake_port: int, agent_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_"))}
    env.update(
        DATABASE_URL=database.owner_dsn,
        INTAKE_DATABASE_URL=database.intake_dsn,
        AGENT_DATABASE_URL=database.agent_dsn,
        CREDENTIAL_ENCRYPTION_KEY=new_encryption_key(),
        AGENT_SERVICE_TOKEN=new_token(),
        AGENT_ADMIN_TOKEN=new_token(),
        INTAKE_SESSION_SECRET=new_token(),
        AGENT_SERVICE_URL=f"https://localhost:{agent_port}",
        AGENT_SERVICE_CA=str(tls.ca_cert),
        TLS_CERT_FILE=str(tls.server_cert),
        TLS_KEY_FILE=str(tls.server_key),
        INTAKE_PORT=str(intake_port),
        AGENT_PORT=str(agent_port),
        HAPEX_BIND_HOST="127.0.0.1",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="8",
        HAPEX_TEST_MODE="1",
        INTAKE_PUBLIC_URL=f"https://localhost:{intake_port}",
    )
    return env


def standin_environment(standin: ProviderStandIn) -> dict[str, str]:
    """The providers as the stack sees them: endpoints, issuer and OAuth clients at the stand-in."""
    env = standin.provider_environment()
    for key in STANDIN_OAUTH_PROVIDERS:
        prefix = f"HAPEX_{key.upper()}"
        env.update({f"{prefix}_ISSUER": standin.url, f"{prefix}_CLIENT_ID": f"standin-{key}-client",
                    f"{prefix}_CLIENT_SECRET": f"standin-{key}-secret-{new_token()[:12]}"})
    return env


def intake_environment(env: dict[str, str]) -> dict[str, str]:
    """What the intake gets, as `make run` and production give it: no key, no agent-only secret."""
    return environment_for("intake", env)


def start_service(service: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"{service}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "hapex.cli", "serve", service],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def stack_tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTLS:
    """The run's CA and the one server certificate the stack and the provider stand-in share."""
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def provider_standin(stack_tls: LocalTLS) -> Iterator[ProviderStandIn]:
    """Google, Slack and Notion for the live stack, consent page included; it sends RFC 9207 `iss`."""
    with ProviderStandIn(stack_tls) as standin:
        standin.server.issuer = standin.url
        yield standin


@pytest.fixture(scope="session")
def live_stack(pg_server: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory,
               stack_tls: LocalTLS, provider_standin: ProviderStandIn) -> Iterator[LiveStack]:
    database = create_database_from(pg_server, migrated_template)
    root = tmp_path_factory.mktemp("stack")
    tls = stack_tls
    log_dir = root / "logs"
    log_dir.mkdir()
    intake_port, agent_port = free_port(), free_port()
    env = stack_environment(database, tls, intake_port, agent_port)
    env.update(standin_environment(provider_standin))
    # Hapex's own Anthropic key: the agent calls the stand-in's /v1/messages with it (build chat, LLM steps).
    env["ANTHROPIC_API_KEY"] = "sk-ant-standin-" + new_token()[:24]
    stack = LiveStack(
        intake_url=f"https://localhost:{intake_port}",
        agent_url=f"https://localhost:{agent_port}",
        tls=tls,
        env=env,
        database=database,
        log_dir=log_dir,
    )
    try:
        agent = start_service("agent", env, log_dir)
        stack.processes.append(agent)
        intake = start_service("intake", intake_environment(env), log_dir)
        stack.processes.append(intake)
        wait_for_health(stack.agent_url + "/healthz", stack.ca_file, agent)
        wait_for_health(stack.intake_url + "/healthz", stack.ca_file, intake)
        yield stack
    except RuntimeError as exc:
        pytest.fail(f"{exc}\n--- service logs ---\n{stack.logs()[-4000:]}")
    finally:
        stop_processes(stack.processes)
        drop_database(pg_server, database.name)


def find_chromium() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured and Path(configured).exists():
        return configured
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def spki_pin(cert_path: Path) -> str:
    """Base64 SHA-256 of a certificate's public key, as Chromium's SPKI allow-list takes it."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="session")
def playwright_driver():  # type: ignore[no-untyped-def]
    """The one Playwright driver of the test session (a second sync_playwright in the same thread fails)."""
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found; .ci/run installs Debian's chromium package")
        pytest.skip("no Chromium found: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch_chromium(playwright_driver, server_cert: Path):  # type: ignore[no-untyped-def]
    """Headless Chromium from the system (Debian's `chromium`) trusting exactly one server key (an SPKI pin)."""
    return playwright_driver.chromium.launch(
        executable_path=find_chromium(),
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--ignore-certificate-errors-spki-list={spki_pin(server_cert)}",
        ],
    )


@pytest.fixture(scope="session")
def browser(playwright_driver, live_stack):  # type: ignore[no-untyped-def]
    """Headless Chromium trusting exactly the stack's server key, not every certificate."""
    browser = launch_chromium(playwright_driver, live_stack.tls.server_cert)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, live_stack):  # type: ignore[no-untyped-def]
    """A fresh browser context; a certificate other than the stack's fails the page."""
    context = browser.new_context(base_url=live_stack.intake_url)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def no_script_page(browser, live_stack):  # type: ignore[no-untyped-def]
    """A fresh page in a context without JavaScript: the core flows must work with forms alone."""
    context = browser.new_context(base_url=live_stack.intake_url, java_script_enabled=False)
    yield context.new_page()
    context.close()


@pytest.fixture
def owner(live_stack):  # type: ignore[no-untyped-def]
    """The stack's database as its owner, to look at what the pages wrote."""
    import psycopg

    with psycopg.connect(live_stack.database.owner_dsn, autocommit=True) as conn:
        yield conn


def sign_up_and_log_in(page, owner_dsn: str, *, email: str, password: str, business: str = "Crumb & Co",
                       confirm: bool = True) -> None:
    """Sign up in the browser, then log in as the notice says to; `confirm` marks the address confirmed
    as following the emailed link does (tests/e2e/test_browser_account_emails.py follows the real link)."""
    import psycopg

    page.goto("/signup")
    page.get_by_label("Business name").fill(business)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    if confirm:
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            conn.execute("UPDATE users SET email_verified_at = now() WHERE email = %s", [email])
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
