"""Hapex behind a platform's TLS-terminating load balancer, under real gunicorn, and the intake stateless.

The agent and two intake processes run with TLS_TERMINATION=proxy on private plain-HTTP ports; a
balancer (tests/balancer.py) terminates TLS in front of each, the intake's alternating between its two
processes request by request. A person's whole first visit (sign up, confirm the address through the
emailed link, log in, build an automation, connect Google through its consent page) goes through it,
so every step after the first lands on the other process than the one before: anything one intake kept
in its memory or on its disk would break the next step. Around it: what reaches a service without
HTTPS at the balancer is refused, health checks still answer the balancer's direct probes, HSTS and
Secure cookies stay, and the intake checks the agent's certificate (at the agent's balancer) itself.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from agent_service.notifications.account_emails import deliver_account_emails
from agent_service.notifications.mailer import SMTPSettings
from hapex.localstack import mail_catcher
from hapex.localstack.local_tls import LocalTLS, ensure_local_tls
from intake.agent_client import AgentClient, AgentError
from intake.config import IntakeConfig
from shared.db import Database
from tests.balancer import Balancer
from tests.conftest import TestDatabase, create_database_from, drop_database
from tests.e2e.conftest import (
    free_port,
    intake_environment,
    stack_environment,
    standin_environment,
    start_service,
    stop_processes,
    wait_for_health,
)
from tests.provider_standin import ProviderStandIn

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
LINK = re.compile(r"https://\S+/email-link/[A-Za-z0-9_-]{43}")


@dataclass
class BalancedStack:
    database: TestDatabase
    tls: LocalTLS
    env: dict[str, str]
    intake: Balancer
    agent: Balancer
    intake_ports: tuple[int, int]
    agent_port: int
    standin: ProviderStandIn
    mail_folder: Path
    mail_port: int

    @property
    def ca(self) -> str:
        return str(self.tls.ca_cert)


@pytest.fixture(scope="module")
def stack(pg_server, migrated_template, tmp_path_factory) -> Iterator[BalancedStack]:
    database = create_database_from(pg_server, migrated_template)
    root = tmp_path_factory.mktemp("balanced")
    tls = ensure_local_tls(root / "tls")
    log_dir = root / "logs"
    log_dir.mkdir()
    agent_port, first, second = free_port(), free_port(), free_port()
    processes = []
    with ProviderStandIn(tls) as standin, \
            Balancer([("127.0.0.1", agent_port)], tls=tls) as agent_lb, \
            Balancer([("127.0.0.1", first), ("127.0.0.1", second)], tls=tls) as intake_lb:
        standin.server.issuer = standin.url  # it sends RFC 9207 `iss`, as Google does
        env = stack_environment(database, tls, intake_lb.port, agent_lb.port)
        env.update(standin_environment(standin))
        for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
            env.pop(name)
        env.update(TLS_TERMINATION="proxy", TRUSTED_PROXY_COUNT="1", GUNICORN_THREADS="4")
        mail_folder = root / "mail"
        mail_port = free_port()
        controller = mail_catcher.start(mail_folder, mail_port)
        try:
            processes.append(start_service("agent", {**env, "HAPEX_BIND": f"127.0.0.1:{agent_port}"}, log_dir))
            for port in (first, second):
                processes.append(start_service(
                    "intake", {**intake_environment(env), "HAPEX_BIND": f"127.0.0.1:{port}"}, log_dir))
            for process, port in zip(processes, (agent_port, first, second), strict=True):
                wait_for_health(f"http://127.0.0.1:{port}/healthz", str(tls.ca_cert), process)
            yield BalancedStack(database, tls, env, intake_lb, agent_lb, (first, second), agent_port, standin,
                                mail_folder, mail_port)
        finally:
            stop_processes(processes)
            controller.stop()
            drop_database(pg_server, database.name)


def test_pages_through_the_balancer_keep_hsts_and_secure_cookies(stack):
    response = requests.get(stack.intake.url + "/signup", verify=stack.ca, timeout=20)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookies = response.headers.get("Set-Cookie", "")
    assert cookies and "Secure" in cookies and "HttpOnly" in cookies
    security = requests.get(stack.intake.url + "/security", verify=stack.ca, timeout=20).text
    # The page tells the truth of this deployment: the balancer holds the certificate, and what that costs.
    assert "load balancer holds the" in security and "travel unencrypted" in security


def test_a_request_that_did_not_reach_the_balancer_over_https_is_refused(stack):
    for port in stack.intake_ports:
        plain = f"http://127.0.0.1:{port}"
        for headers in ({}, {"X-Forwarded-Proto": "http"}):
            page = requests.get(plain + "/security?x=1", headers=headers, allow_redirects=False, timeout=20)
            # Sent to the configured public origin, never to the Host the request named.
            assert page.status_code == 308
            assert page.headers["Location"] == stack.intake.url + "/security?x=1"
            form = requests.post(plain + "/login", data={"email": "a@example.com"}, headers=headers, timeout=20)
            assert form.status_code == 403
            assert form.json()["error"] == "https_required"
    api = requests.get(f"http://127.0.0.1:{stack.agent_port}/v1/admin/queue",
                       headers={"Authorization": "Bearer " + stack.env["AGENT_ADMIN_TOKEN"]}, timeout=20)
    assert api.status_code == 403 and api.json()["error"] == "https_required"
    # Through its balancer the same call is served.
    served = requests.get(stack.agent.url + "/v1/admin/queue", verify=stack.ca, timeout=20,
                          headers={"Authorization": "Bearer " + stack.env["AGENT_ADMIN_TOKEN"]})
    assert served.status_code == 200


def test_the_balancers_own_health_probes_answer_over_plain_http(stack):
    for port in (*stack.intake_ports, stack.agent_port):
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=20).status_code == 200


def test_the_intake_checks_the_agents_certificate_at_its_balancer(stack, tmp_path):
    ready = requests.get(stack.intake.url + "/readyz", verify=stack.ca, timeout=20)
    assert ready.status_code == 200, ready.text
    assert ready.json()["agent"] == "ok"
    # The same call from an intake that trusts another CA does not go through: the check is real.
    other_ca = ensure_local_tls(tmp_path / "other-tls").ca_cert
    environ = {k: v for k, v in intake_environment(stack.env).items() if k in IntakeConfig.variables()}
    config = IntakeConfig.from_env({**environ, "AGENT_SERVICE_CA": str(other_ca)})
    with pytest.raises(AgentError):
        AgentClient(config).check_alive()


class Person:
    """One browser's cookies, through the balancer, posting forms as a browser does."""

    def __init__(self, stack: BalancedStack) -> None:
        self.stack = stack
        self.session = requests.Session()
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE from the environment.
        self.session.trust_env = False

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.stack.intake.url + path

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url(path), allow_redirects=False, timeout=30, verify=self.stack.ca)

    def token(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        match = CSRF.search(page.text)
        assert match, f"no CSRF field on {path}"
        return html.unescape(match.group(1))

    def post(self, path: str, data: dict[str, str], *, token_from: str | None = None) -> requests.Response:
        form = {**data, "csrf_token": self.token(token_from or path)}
        return self.session.post(self.url(path), data=form, allow_redirects=False, timeout=30, verify=self.stack.ca,
                                 headers={"Referer": self.url(token_from or path)})


def confirmation_link(stack: BalancedStack, address: str) -> str:
    agent_db = Database(stack.database.agent_dsn, name="balanced-mail").open()
    try:
        deliver_account_emails(agent_db, SMTPSettings(host="127.0.0.1", port=stack.mail_port,
                                                      sender=mail_catcher.LOCAL_SENDER, starttls=False))
    finally:
        agent_db.close()
    for path in reversed(mail_catcher.messages(stack.mail_folder)):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            match = LINK.search(message.get_content())  # type: ignore[attr-defined]
            assert match
            return match.group(0)
    raise AssertionError("no confirmation email")


def test_a_persons_first_visit_works_with_each_step_on_the_other_intake(stack):
    person = Person(stack)
    address = f"balanced-{uuid.uuid4().hex[:10]}@example.com"
    start = len(stack.intake.served)

    signed_up = person.post("/signup", {"business_name": "Crumb & Co", "email": address, "password": PASSWORD})
    assert signed_up.status_code == 303, signed_up.text
    link = confirmation_link(stack, address)
    assert link.startswith(stack.intake.url + "/email-link/")
    confirmed = person.post(link, {})
    assert confirmed.status_code == 303, confirmed.text
    logged_in = person.post("/login", {"email": address, "password": PASSWORD})
    assert logged_in.status_code == 303 and urlsplit(logged_in.headers["Location"]).path == "/automations"
    assert person.get("/automations").status_code == 200

    form = {"name": "Unread mail", "trigger_kind": "manual", "cron": "", "timezone": "UTC"}
    added = person.post("/automations/new", {**form, "action": "add_step", "new_capability": "gmail.search"},
                        token_from="/automations/new")
    assert added.status_code == 200 and 'name="steps-0-value-query"' in added.text
    form.update({"steps-0-capability": "gmail.search", "steps-0-value-query": "is:unread",
                 "steps-0-value-max_results": ""})
    saved = person.post("/automations/new", {**form, "action": "save"}, token_from="/automations/new")
    assert saved.status_code == 303, saved.text
    automation_id = saved.headers["Location"].rsplit("/", 1)[1]
    assert person.get(f"/automations/{automation_id}").status_code == 200

    consent = person.post("/connections/google/connect", {"automation_id": automation_id},
                          token_from=f"/automations/{automation_id}")
    # The page saying what will be asked, with its one link to the provider's consent screen.
    assert consent.status_code == 200, consent.text
    continue_link = re.search(r'id="continue" href="([^"]+)"', consent.text)
    assert continue_link
    authorize = html.unescape(continue_link.group(1))
    assert authorize.startswith(stack.standin.url + "/authorize?")
    asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert asked["redirect_uri"] == stack.intake.url + "/connections/oauth/google/callback"
    allow = re.search(r'id=allow href="([^"]+)"', person.session.get(authorize, timeout=30, verify=stack.ca).text)
    assert allow
    back = person.get(html.unescape(allow.group(1)))
    assert back.status_code == 303, back.text
    # Back where the person started: the automation (or the connection's own page).
    assert re.fullmatch(rf"/(automations/{automation_id}|connections/[0-9a-f-]{{36}})",
                        urlsplit(back.headers["Location"]).path), back.headers
    assert "Google" in person.get(back.headers["Location"]).text

    with psycopg.connect(stack.database.owner_dsn) as conn:
        status = conn.execute("SELECT c.status FROM connections c JOIN users u USING (client_id) "
                              "WHERE u.email = %s", [address]).fetchall()
    assert status == [("active",)]
    # Strict round robin: every request of the visit went to the other intake than the one before.
    ports = [port for port, _method, _path in stack.intake.served[start:]]
    assert len(ports) > 15 and set(ports) == set(stack.intake_ports)
    assert all(a != b for a, b in zip(ports, ports[1:], strict=False))
