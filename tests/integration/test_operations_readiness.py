"""Readiness of both services, and `hapex doctor`: each problem named with what to fix, and no
secret value ever printed."""

from __future__ import annotations

import base64
import io
import logging
import os
from datetime import UTC, datetime, timedelta

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent_service.vault import Keyring, Purpose, Vault
from agent_service.vault.keys import key_id
from hapex.cli import main
from hapex.doctor import run_doctor
from hapex.localstack.local_secrets import new_token
from hapex.localstack.local_tls import ensure_local_tls
from shared.db import Database, tenant_transaction
from shared.secret import Secret
from tests.agent_api import build_agent_app
from tests.factories import make_client, make_connection
from tests.integration.conftest import AGENT_URL, Visitor

KEY = os.urandom(32)
OTHER_KEY = os.urandom(32)
SERVICE, ADMIN, SESSION = new_token(), new_token(), new_token()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def store_credential_under(agent_db, intake_db, key: bytes) -> None:
    """A credential written by an agent holding `key`, as another replica might after a deploy."""
    client_id = make_client(intake_db)
    connection_id = make_connection(agent_db, client_id)
    with tenant_transaction(agent_db, client_id) as conn:
        Vault(Keyring(key), agent_db).store(conn, client_id=client_id, connection_id=connection_id,
                                            purpose=Purpose.ACCESS_TOKEN, secret=Secret("token-canary-4321"))


# --- /readyz -----------------------------------------------------------------------------


def test_the_agent_is_ready_with_its_database_and_every_key_it_needs(database, agent_db, intake_db):
    agent_app = build_agent_app(database, agent_db, key=KEY)
    store_credential_under(agent_db, intake_db, KEY)
    response = agent_app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "credential_keys": "ok"}


def test_the_agent_is_not_ready_once_a_credential_uses_a_key_it_lacks(agent_app, agent_db, intake_db, caplog):
    store_credential_under(agent_db, intake_db, OTHER_KEY)
    with caplog.at_level(logging.ERROR):
        response = agent_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "ok", "credential_keys": "missing"}
    assert key_id(OTHER_KEY) not in response.get_data(as_text=True)
    assert any(getattr(record, "key_id", "") == key_id(OTHER_KEY) for record in caplog.records)


def test_the_agent_is_not_ready_without_its_database(agent_app):
    unreachable = Database("postgresql://hapex_agent@127.0.0.1:1/hapex?connect_timeout=1", name="gone")
    unreachable.pool.timeout = 1.0
    unreachable.open(wait=False)
    agent_app.extensions["hapex_db"] = unreachable
    try:
        response = agent_app.test_client().get("/readyz")
    finally:
        unreachable.close()
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable", "credential_keys": "unchecked"}


def test_the_intake_is_ready_when_its_database_and_the_agent_answer(intake_app, agent_transport):
    visitor = Visitor(intake_app)
    response = visitor.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "agent": "ok"}
    assert ("GET", "/healthz") in agent_transport.calls
    assert "Set-Cookie" not in response.headers


def test_the_intake_is_not_ready_when_the_agent_is_down(intake_app, agent_transport):
    agent_transport.fail_with = 503
    response = Visitor(intake_app).get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "ok", "agent": "unreachable"}


# --- hapex doctor ------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path):
    return ensure_local_tls(tmp_path / "tls")


def agent_env(database, tls, **changes) -> dict[str, str]:
    env = {"AGENT_DATABASE_URL": database.agent_dsn, "AGENT_SERVICE_TOKEN": SERVICE, "AGENT_ADMIN_TOKEN": ADMIN,
           "CREDENTIAL_ENCRYPTION_KEY": b64(KEY), "TLS_CERT_FILE": str(tls.server_cert),
           "TLS_KEY_FILE": str(tls.server_key)}
    env.update(changes)
    return {name: value for name, value in env.items() if value is not None}


def doctor(service, environ) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(out, service=service, environ=environ, timeout=2)
    return code, out.getvalue()


def assert_no_secret(output: str, environ: dict[str, str]) -> None:
    for name in ("AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY", "INTAKE_SESSION_SECRET",
                 "HAPEX_SMTP_PASSWORD"):
        if environ.get(name):
            assert environ[name] not in output, name


def test_doctor_passes_a_healthy_agent_and_prints_no_secret(database, tls, agent_db, intake_db):
    store_credential_under(agent_db, intake_db, KEY)
    env = agent_env(database, tls)
    code, output = doctor("agent", env)
    assert code == 0, output
    for expected in ("ok    database reachable as hapex_agent", "ok    every migration is applied",
                     "ok    the database role is confined by row-level security",
                     "ok    every stored credential and step output is under a key held here (1 sealed row(s))",
                     "ok    TLS key matches the certificate", "No problems found."):
        assert expected in output
    assert_no_secret(output, env)


def test_doctor_names_a_missing_key_id_and_how_to_fix_it(database, tls, agent_db, intake_db):
    store_credential_under(agent_db, intake_db, OTHER_KEY)
    env = agent_env(database, tls)
    code, output = doctor("agent", env)
    assert code == 1
    assert f"FAIL  credential keys: The database holds credentials under key ids this agent does not have: " \
           f"{key_id(OTHER_KEY)} (1 credential)" in output
    assert "CREDENTIAL_ENCRYPTION_KEYS_RETIRED" in output
    assert b64(OTHER_KEY) not in output
    assert_no_secret(output, env)


def test_doctor_reports_an_unreachable_database_without_its_password(database, tls):
    env = agent_env(database, tls,
                    AGENT_DATABASE_URL="postgresql://hapex_agent:pw-canary-9876@127.0.0.1:1/hapex")
    code, output = doctor("agent", env)
    assert code == 1
    assert "FAIL  cannot connect to the database of AGENT_DATABASE_URL" in output
    assert "pw-canary-9876" not in output


@pytest.mark.parametrize(("changes", "expected"), [
    ({"CREDENTIAL_ENCRYPTION_KEY": None}, "FAIL  CREDENTIAL_ENCRYPTION_KEY must be set"),
    ({"CREDENTIAL_ENCRYPTION_KEY": "not-a-key"}, "FAIL  CREDENTIAL_ENCRYPTION_KEY is not valid base64"),
    ({"AGENT_ADMIN_TOKEN": "short"}, "FAIL  AGENT_ADMIN_TOKEN must be at least 32 characters long"),
    ({"AGENT_ADMIN_TOKEN": SERVICE}, "FAIL  AGENT_ADMIN_TOKEN must differ from AGENT_SERVICE_TOKEN"),
    ({"AGENT_DATABASE_URL": "mysql://agent@db/hapex"}, "FAIL  AGENT_DATABASE_URL must be a postgresql:// URL"),
    ({"TLS_KEY_FILE": "/nonexistent/key.pem"}, "FAIL  TLS_KEY_FILE must name a readable file"),
    ({"HAPEX_SMTP_HOST": "smtp.example.com"}, "FAIL  HAPEX_SMTP_FROM must be set"),
    ({"HAPEX_STEP_MAX_ATTEMPTS": "lots"}, "FAIL  HAPEX_STEP_MAX_ATTEMPTS must be an integer"),
])
def test_doctor_names_each_variable_that_is_missing_or_malformed(database, tls, changes, expected):
    env = agent_env(database, tls, **changes)
    code, output = doctor("agent", env)
    assert code == 1
    assert expected in output
    assert "fix:" in output
    assert_no_secret(output, env)


def test_doctor_refuses_a_role_that_bypasses_row_security(database, tls):
    code, output = doctor("agent", agent_env(database, tls, AGENT_DATABASE_URL=database.owner_dsn))
    assert code == 1
    assert "FAIL  the database role is a superuser, bypasses row-level security or owns tables" in output


def test_doctor_names_migrations_not_applied(database, tls, owner_conn):
    owner_conn.execute("DELETE FROM hapex_migrations WHERE version = 11")
    code, output = doctor("worker", agent_env(database, tls))
    assert code == 1
    assert "FAIL  migrations not applied: 0011_operations" in output
    assert "run `hapex db migrate` as the owner" in output


def self_signed(tmp_path, *, days_left: float):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=400))
            .not_valid_after(now + timedelta(days=days_left)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_doctor_fails_an_expired_certificate_and_warns_of_one_expiring(database, tls, tmp_path):
    cert, key = self_signed(tmp_path, days_left=-1)
    code, output = doctor("agent", agent_env(database, tls, TLS_CERT_FILE=cert, TLS_KEY_FILE=key))
    assert code == 1 and "FAIL  TLS_CERT_FILE expired on" in output
    cert, key = self_signed(tmp_path, days_left=5)
    code, output = doctor("agent", agent_env(database, tls, TLS_CERT_FILE=cert, TLS_KEY_FILE=key))
    assert code == 0 and "warn  TLS_CERT_FILE expires on" in output


def test_doctor_fails_a_key_that_is_not_the_certificates(database, tls, tmp_path):
    _, other_key = self_signed(tmp_path, days_left=100)
    code, output = doctor("agent", agent_env(database, tls, TLS_KEY_FILE=other_key))
    assert code == 1 and "FAIL  TLS_KEY_FILE is not the key of TLS_CERT_FILE" in output


def test_a_worker_needs_no_tls_files(database, tls):
    code, output = doctor("worker", agent_env(database, tls, TLS_CERT_FILE=None, TLS_KEY_FILE=None))
    assert code == 0, output
    assert "TLS" not in output


def intake_env(database, tls, **changes) -> dict[str, str]:
    env = {"INTAKE_DATABASE_URL": database.intake_dsn, "INTAKE_SESSION_SECRET": SESSION,
           "AGENT_SERVICE_TOKEN": SERVICE, "AGENT_SERVICE_URL": AGENT_URL, "AGENT_SERVICE_CA": str(tls.ca_cert),
           "TLS_CERT_FILE": str(tls.server_cert), "TLS_KEY_FILE": str(tls.server_key)}
    env.update(changes)
    return {name: value for name, value in env.items() if value is not None}


@responses.activate
def test_doctor_passes_a_healthy_intake_that_reaches_a_ready_agent(database, tls):
    responses.get(AGENT_URL + "/readyz", json={"status": "ok"})
    env = intake_env(database, tls)
    code, output = doctor("intake", env)
    assert code == 0, output
    assert "ok    database reachable as hapex_intake" in output
    assert "ok    the agent is reachable over HTTPS and ready" in output
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {SERVICE}"
    assert_no_secret(output, env)


@responses.activate
def test_doctor_fails_an_intake_whose_agent_is_not_ready(database, tls):
    responses.get(AGENT_URL + "/readyz", status=503,
                  json={"status": "unavailable", "database": "ok", "credential_keys": "missing"})
    code, output = doctor("intake", intake_env(database, tls))
    assert code == 1
    assert "FAIL  the agent answered /readyz with 503 (not ready: credential_keys)" in output
    assert "run `hapex doctor agent` there" in output


@responses.activate
def test_doctor_fails_an_intake_whose_agent_does_not_answer_as_the_agent(database, tls):
    responses.get(AGENT_URL + "/readyz", status=502, body="<html>Bad gateway</html>")
    code, output = doctor("intake", intake_env(database, tls))
    assert code == 1
    assert "FAIL  the agent at AGENT_SERVICE_URL is unreachable or not ready" in output


@pytest.mark.parametrize(("changes", "expected"), [
    ({"AGENT_SERVICE_URL": "http://agent:8444"}, "FAIL  AGENT_SERVICE_URL must be an https:// URL"),
    ({"INTAKE_SESSION_SECRET": None}, "FAIL  INTAKE_SESSION_SECRET must be set"),
    ({"CREDENTIAL_ENCRYPTION_KEY": b64(KEY)}, "FAIL  CREDENTIAL_ENCRYPTION_KEY is set in the intake's environment"),
])
def test_doctor_names_what_is_wrong_with_an_intake(database, tls, changes, expected):
    env = intake_env(database, tls, **changes)
    code, output = doctor("intake", env)
    assert code == 1
    assert expected in output
    assert b64(KEY) not in output


def test_hapex_doctor_exits_non_zero_on_a_problem(database, tls, monkeypatch, capsys):
    for name, value in agent_env(database, tls, CREDENTIAL_ENCRYPTION_KEY=None).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDENTIAL_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("INTAKE_DATABASE_URL", raising=False)
    assert main(["doctor", "worker"]) == 1
    assert "CREDENTIAL_ENCRYPTION_KEY must be set" in capsys.readouterr().out
