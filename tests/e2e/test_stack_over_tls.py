"""Both services under gunicorn, over TLS that verifies against the run's own CA."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import requests

from intake.agent_client import AgentClient, ClientProofRefused
from intake.config import IntakeConfig
from tests.e2e.conftest import intake_environment


def test_both_services_answer_healthz_over_verified_tls(live_stack):
    for url in (live_stack.intake_url, live_stack.agent_url):
        response = requests.get(url + "/healthz", verify=live_stack.ca_file, timeout=5)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


def test_a_client_that_does_not_trust_the_ca_is_refused(live_stack):
    for url in (live_stack.intake_url, live_stack.agent_url):
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/healthz", verify=True, timeout=5)


def test_plain_http_on_the_service_ports_gets_no_answer(live_stack):
    url = live_stack.agent_url.replace("https://", "http://") + "/healthz"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=5)


def test_the_intake_reaches_the_agent_over_https_with_its_bearer_token(live_stack):
    config = IntakeConfig.from_env(live_stack.env)
    client = AgentClient(config)
    # A tenant route: with a wrong token this raises AgentUnavailable (401/403); with the right one
    # the agent goes on to ask for the client's own proof, which a call outside a request lacks.
    with pytest.raises(ClientProofRefused) as refused:
        client.chat_status(uuid.uuid4())
    assert refused.value.name == "client_proof_required"


def test_agent_api_demands_the_bearer_token_over_the_wire(live_stack):
    url = live_stack.agent_url + "/v1/openapi.json"
    assert requests.get(url, verify=live_stack.ca_file, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert requests.get(url, headers=wrong, verify=live_stack.ca_file, timeout=5).status_code == 403
    ok = requests.get(url, headers=live_stack.agent_headers(), verify=live_stack.ca_file, timeout=5)
    assert ok.status_code == 200 and ok.json()["openapi"].startswith("3.")


def test_access_logs_carry_no_query_string_and_no_token(live_stack):
    marker = "canary" + uuid.uuid4().hex
    requests.get(
        f"{live_stack.intake_url}/healthz?code={marker}&state={marker}",
        verify=live_stack.ca_file,
        timeout=5,
    )
    requests.get(
        live_stack.agent_url + "/v1/openapi.json",
        headers=live_stack.agent_headers(),
        verify=live_stack.ca_file,
        timeout=5,
    )
    logs = live_stack.logs()
    assert '"path": "/healthz"' in logs
    assert marker not in logs
    assert live_stack.env["AGENT_SERVICE_TOKEN"] not in logs
    assert live_stack.env["AGENT_ADMIN_TOKEN"] not in logs


def test_the_browser_loads_the_intake_over_tls(page, live_stack):
    response = page.goto("/")
    assert response is not None and response.status == 200
    assert "Hapex" in page.title()
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


@pytest.mark.parametrize(
    ("service", "unset", "variable"),
    [
        ("agent", "AGENT_SERVICE_TOKEN", "AGENT_SERVICE_TOKEN"),
        ("agent", "AGENT_ADMIN_TOKEN", "AGENT_ADMIN_TOKEN"),
        ("agent", "CREDENTIAL_ENCRYPTION_KEY", "CREDENTIAL_ENCRYPTION_KEY"),
        ("agent", "AGENT_DATABASE_URL", "AGENT_DATABASE_URL"),
        ("intake", "INTAKE_SESSION_SECRET", "INTAKE_SESSION_SECRET"),
        ("intake", "AGENT_SERVICE_URL", "AGENT_SERVICE_URL"),
        ("intake", "TLS_CERT_FILE", "TLS_CERT_FILE"),
        ("worker", "CREDENTIAL_ENCRYPTION_KEY", "CREDENTIAL_ENCRYPTION_KEY"),
    ],
)
def test_start_up_with_a_missing_secret_exits_non_zero_naming_it(live_stack, service, unset, variable):
    env = intake_environment(live_stack.env) if service == "intake" else dict(live_stack.env)
    env.pop(unset)
    result = subprocess.run(
        [sys.executable, "-m", "hapex.cli", "serve", service],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    for name in ("AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY", "INTAKE_SESSION_SECRET"):
        if name in env:
            assert env[name] not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("agent", "CREDENTIAL_ENCRYPTION_KEY", "bm90LWEta2V5"),
        ("agent", "CREDENTIAL_ENCRYPTION_KEY", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="),
        ("agent", "CREDENTIAL_ENCRYPTION_KEY", "%%%not base64 at all, but long enough%%%"),
        ("agent", "AGENT_SERVICE_TOKEN", "short-token"),
        ("intake", "AGENT_SERVICE_URL", "http://localhost:8444"),
        ("intake", "INTAKE_SESSION_SECRET", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ],
)
def test_start_up_with_a_malformed_secret_names_it_and_never_prints_it(live_stack, service, variable, value):
    env = intake_environment(live_stack.env) if service == "intake" else dict(live_stack.env)
    env[variable] = value
    result = subprocess.run(
        [sys.executable, "-m", "hapex.cli", "serve", service],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    assert value not in result.stderr + result.stdout


@pytest.mark.parametrize("variable", ["CREDENTIAL_ENCRYPTION_KEY", "CREDENTIAL_ENCRYPTION_KEYS_RETIRED",
                                      "AGENT_ADMIN_TOKEN", "ANTHROPIC_API_KEY", "HAPEX_GOOGLE_CLIENT_SECRET",
                                      "HAPEX_SMTP_PASSWORD"])
def test_the_intake_refuses_to_start_when_given_an_agent_only_secret(live_stack, variable):
    env = intake_environment(live_stack.env)
    env[variable] = live_stack.env.get(variable) or live_stack.env["CREDENTIAL_ENCRYPTION_KEY"]
    result = subprocess.run(
        [sys.executable, "-m", "hapex.cli", "serve", "intake"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    assert env[variable] not in result.stderr + result.stdout

