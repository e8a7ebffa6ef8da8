"""The main job on a fresh machine, from `make run`'s own stack: `hapex run` in an empty data dir.

Nothing here is built by a fixture: the command makes its database, secrets, CA and sandbox
as it does for a newcomer, and Chromium does what the README tells them to do. Sign up,
describe the invoice digest to the build chat (the Claude stand-in proposes it), connect the
sandboxed Google and Slack through their consent pages, run it, and find the message in the
sandbox's Slack channel. Access tokens live 20 s there, so the runs refresh and the sandbox
rotates refresh tokens; a second run succeeding shows Hapex kept the rotated ones. Disconnecting
revokes at the sandbox, after which the grant's tokens are dead.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from hapex.localstack import mail_catcher
from tests.e2e.conftest import free_port, launch_chromium, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
REQUEST = "Every weekday at 8, search Gmail for invoices, summarise with Claude, post to Slack"


@dataclass
class MadeRun:
    intake_url: str
    sandbox_url: str
    data_dir: Path
    ca_file: str
    process: subprocess.Popen[bytes]
    log: Path
    started_at: float
    ready_at: float
    env: dict[str, str]

    def sandbox_state(self) -> dict:
        return json.loads((self.data_dir / "sandbox" / "state.json").read_text())

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def made_run() -> Iterator[MadeRun]:
    """`hapex run` as `make run` starts it, in a fresh data dir on free ports, from a clean environment."""
    # Not under pytest's own temporary folder: run as root, the embedded PostgreSQL's initdb runs as its
    # own user, which must traverse the folders above its data, and every pytest session that starts
    # meanwhile (another checkout's, say) sets /tmp/pytest-of-<user> back to 0700.
    root = Path(tempfile.mkdtemp(prefix="hapex-make-run-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENT_", "INTAKE_", "CREDENTIAL_", "HAPEX_", "ANTHROPIC_", "TLS_"))
           and k not in ("DATABASE_URL", "LOG_LEVEL")}
    ports = {name: free_port() for name in ("INTAKE_PORT", "AGENT_PORT", "HAPEX_SANDBOX_PORT", "HAPEX_SMTP_PORT")}
    env.update({k: str(v) for k, v in ports.items()}, HAPEX_DATA_DIR=str(root / "data"),
               HAPEX_SANDBOX_ACCESS_TOKEN_SECONDS="20")
    log = root / "hapex-run.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hapex.cli", "run"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    made = MadeRun(f"https://localhost:{ports['INTAKE_PORT']}", f"https://localhost:{ports['HAPEX_SANDBOX_PORT']}",
                   root / "data", str(root / "data" / "tls" / "ca.pem"), process, log, started, 0.0, env)
    try:
        ready = wait_for(lambda: "press Ctrl-C to stop" in made.output() or process.poll() is not None, 300)
        if not ready or process.poll() is not None:
            pytest.fail("hapex run did not come up:\n" + made.output()[-4000:])
        made.ready_at = time.monotonic()
        yield made
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is not None:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(playwright_driver, made_run: MadeRun):  # type: ignore[no-untyped-def]
    browser = launch_chromium(playwright_driver, made_run.data_dir / "tls" / "server.pem")
    yield browser
    browser.close()


@pytest.fixture
def page(browser, made_run: MadeRun):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=made_run.intake_url)
    yield context.new_page()
    context.close()


def connect_through_consent(page: Page, made_run: MadeRun, provider: str, name: str) -> str:
    """From the automation's page: Connect, the sandbox's consent page (every scope ticked), Allow."""
    need = page.locator("div", has=page.get_by_role("heading", name=name, exact=False)).filter(
        has=page.get_by_role("button", name="Connect")).last
    need.get_by_role("button", name="Connect").click()
    page.wait_for_url(f"{made_run.sandbox_url}/{provider}/oauth/authorize?**")
    boxes = page.get_by_role("checkbox")
    assert boxes.count() >= 1 and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    # Back on the automation's page, at what it needs from this provider.
    page.wait_for_url(re.compile(re.escape(made_run.intake_url) + rf"/automations/[0-9a-f-]+#need-{provider}$"))
    expect(page.get_by_text(f"{name} (sandbox) is connected.")).to_be_visible()
    page.goto("/connections")
    section = page.locator("section", has=page.locator(f"#provider-{provider}"))
    active = section.locator("tr", has=page.locator(".status-active")).first
    return made_run.intake_url + str(active.get_by_role("link").first.get_attribute("href"))


def run_now_and_wait(page: Page, automation_url: str) -> str:
    page.goto(automation_url)
    before = page.locator("a[href*='/runs/']").count()
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("The run is queued.")).to_be_visible()
    assert page.locator("a[href*='/runs/']").count() == before + 1
    page.locator("a[href*='/runs/']").first.click()
    run_url = page.url

    def finished() -> str | None:
        page.goto(run_url)
        status = page.locator(".facts .status").first.inner_text()
        return status if status in ("succeeded", "failed") else None

    status = wait_for(finished, 240, interval=1.0)
    assert status == "succeeded", page.locator("main").inner_text()
    assert page.locator("td.provider").all_inner_texts() == [
        "Google Workspace (sandbox)", "Claude stand-in (sandbox)", "Slack (sandbox)"]
    return run_url


def sign_up_as_a_newcomer(page: Page, made_run: MadeRun, who: str, business: str) -> None:
    """Sign up; sign-up starts no session, so log in as its notice says, then confirm the address from
    the email make run's own mail catcher caught (connecting a provider needs a confirmed address)."""
    address = f"{who}-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/signup")
    page.get_by_label("Business name").fill(business)
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(wait_for(lambda: confirmation_link(made_run, address), 60, interval=0.5))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_text("Your email address is confirmed.")).to_be_visible()
    page.goto("/automations")


def confirmation_link(made_run: MadeRun, address: str) -> str | None:
    """The confirmation link of the email make run's mail catcher wrote for this address, once it is there."""
    for path in mail_catcher.messages(made_run.data_dir / "mail"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            match = re.search(r"https://\S+/email-link/[A-Za-z0-9_-]{43}", message.get_content())  # type: ignore[attr-defined]
            if match:
                return match.group(0)
    return None


def test_a_newcomer_runs_the_invoice_digest_against_the_sandbox_and_sees_it_in_slack(page, made_run):
    sandbox = made_run.sandbox_url
    sign_up_as_a_newcomer(page, made_run, "newcomer", "Crumb & Co")

    # The build chat: the Claude stand-in proposes the digest from the catalog, and says it is a stand-in.
    page.get_by_role("link", name="Build chat").click()
    page.get_by_role("link", name="Describe it in words").click()
    page.get_by_label("Your message").fill(REQUEST)
    page.get_by_role("button", name="Start the chat").click()
    expect(page.get_by_text("Sandbox stand-in for Claude", exact=False)).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("link", name=re.compile("Invoice digest")).first.click()
    automation_url = page.url
    expect(page.get_by_text("Google Workspace (sandbox)", exact=False).first).to_be_visible()
    page.goto("/data-and-privacy")
    expect(page.get_by_role("heading", name="Slack (sandbox)")).to_be_visible()
    page.goto(automation_url)

    connect_through_consent(page, made_run, "google", "Google Workspace")
    page.goto(automation_url)
    slack_connection = connect_through_consent(page, made_run, "slack", "Slack")

    run_now_and_wait(page, automation_url)
    page.goto(f"{sandbox}/slack/channels/general")
    message = page.locator(".message .text").first
    expect(message).to_contain_text("3 email(s) found")
    for subject in ("Invoice INV-2041", "invoice 88-317", "Invoice PW-5520"):
        expect(message).to_contain_text(subject)
    expect(message).to_contain_text("Sandbox stand-in for Claude")
    first_run_done = time.monotonic()

    # Access tokens live 20 s: once they have expired, the next run refreshes, and the sandbox rotates.
    state = made_run.sandbox_state()
    refreshes_before = {p: state["events_seen"].get(f"{p}.token.refresh_token", 0) for p in ("google", "slack")}
    time.sleep(max(0.0, 21 - (time.monotonic() - first_run_done)))
    run_now_and_wait(page, automation_url)
    state = made_run.sandbox_state()
    for provider in ("google", "slack"):
        assert state["events_seen"].get(f"{provider}.token.refresh_token", 0) > refreshes_before[provider]
        rotated = [t for t in state["tokens"].values() if t["kind"] == "refresh" and t["revoked"]
                   and state["grants"][t["grant_id"]]["provider"] == provider]
        assert rotated, f"no rotated-out {provider} refresh token"
    assert not any(g["revoked"] for g in state["grants"].values()), "a refresh token was reused"
    assert len(state["slack_messages"]) == 2

    # Disconnect Slack: Hapex revokes at the sandbox, and every token of that grant is dead there.
    page.goto(slack_connection)
    page.get_by_label("Yes, disconnect it").check()
    page.get_by_role("button", name="Disconnect Slack (sandbox)").click()
    expect(page.get_by_text("confirmed that Hapex's access is revoked")).to_be_visible()
    state = made_run.sandbox_state()
    slack_grants = [g for g in state["grants"].values() if g["provider"] == "slack"]
    assert slack_grants and all(g["revoked"] for g in slack_grants)
    tokens = [t["value"] for t in state["tokens"].values() if t["kind"] == "access"
              and state["grants"][t["grant_id"]]["provider"] == "slack"]
    for token in tokens:
        answer = requests.post(f"{sandbox}/slack/api/chat.postMessage", json={"channel": "#general", "text": "x"},
                               headers={"Authorization": f"Bearer {token}"}, verify=made_run.ca_file, timeout=10)
        assert answer.json() == {"ok": False, "error": "invalid_auth"}

    print(f"\nfresh data dir to stack ready: {made_run.ready_at - made_run.started_at:.1f} s; "
          f"to first successful run: {first_run_done - made_run.started_at:.1f} s")
    output = made_run.output()
    assert "hapex: sandbox" in output
    for token in tokens:
        assert token not in output


def test_disconnecting_google_revokes_the_grant_at_the_sandbox(page, made_run):
    sign_up_as_a_newcomer(page, made_run, "revoker", "Crumb & Co")
    page.get_by_role("link", name="Build chat").click()
    page.get_by_role("link", name="Describe it in words").click()
    page.get_by_label("Your message").fill(REQUEST)
    page.get_by_role("button", name="Start the chat").click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("link", name=re.compile("Invoice digest")).first.click()
    grants_before = set(made_run.sandbox_state()["grants"])
    google_connection = connect_through_consent(page, made_run, "google", "Google Workspace")
    (grant_id,) = set(made_run.sandbox_state()["grants"]) - grants_before
    page.goto(google_connection)
    page.get_by_label("Yes, disconnect it").check()
    page.get_by_role("button", name="Disconnect Google Workspace (sandbox)").click()
    expect(page.locator(".facts .status")).to_have_text("revoked")
    assert made_run.sandbox_state()["grants"][grant_id]["revoked"] is True


def test_a_second_make_run_in_the_same_clone_says_one_is_running_and_leaves_it_untouched(page, made_run):
    second = subprocess.run([sys.executable, "-m", "hapex.cli", "run"], env=made_run.env, capture_output=True,
                            text=True, timeout=120)
    assert second.returncode != 0
    assert "a stack is already running" in second.stderr
    assert f"intake {made_run.intake_url}" in second.stderr
    assert made_run.process.poll() is None
    # The first stack, its database included, still serves: a sign-up works.
    sign_up_as_a_newcomer(page, made_run, "still", "Still here")
    expect(page).to_have_url(re.compile(r".*/automations$"))
