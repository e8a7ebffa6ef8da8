"""The local stack's secrets, certificates and command line, as a developer's machine gets them."""

from __future__ import annotations

import base64
import ssl
import stat
import subprocess
import sys

from cryptography import x509

from agent_service.vault.keys import parse_key
from hapex.localstack.local_secrets import LOCAL_SECRET_NAMES, ensure_local_secrets
from hapex.localstack.local_tls import ensure_local_tls


def test_local_secrets_are_generated_once_and_private(tmp_path):
    first = ensure_local_secrets(tmp_path)
    mode = stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode)
    assert mode == 0o600
    assert set(first) == set(LOCAL_SECRET_NAMES)
    assert ensure_local_secrets(tmp_path) == first
    assert len(set(first.values())) == len(first)
    parse_key("CREDENTIAL_ENCRYPTION_KEY", first["CREDENTIAL_ENCRYPTION_KEY"])


def test_a_missing_local_secret_is_added_without_changing_the_others(tmp_path):
    first = ensure_local_secrets(tmp_path)
    path = tmp_path / "secrets.env"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "AGENT_ADMIN_TOKEN" not in line))
    second = ensure_local_secrets(tmp_path)
    assert second["AGENT_SERVICE_TOKEN"] == first["AGENT_SERVICE_TOKEN"]
    assert second["AGENT_ADMIN_TOKEN"] and second["AGENT_ADMIN_TOKEN"] != first["AGENT_ADMIN_TOKEN"]


def test_the_local_certificate_verifies_against_the_local_ca_for_localhost(tmp_path):
    tls = ensure_local_tls(tmp_path)
    assert stat.S_IMODE(tls.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tls.server_cert), str(tls.server_key))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(outgoing.read())
        incoming.write(s_out.read())
    assert client.version() is not None
    assert ensure_local_tls(tmp_path).server_cert.read_bytes() == tls.server_cert.read_bytes()


def test_hapex_keys_generate_prints_a_valid_encryption_key():
    result = subprocess.run([sys.executable, "-m", "hapex.cli", "keys", "generate"], capture_output=True, text=True,
                            timeout=60, check=True)
    key = result.stdout.strip()
    assert len(base64.b64decode(key)) == 32
    parse_key("CREDENTIAL_ENCRYPTION_KEY", key)


def test_hapex_serve_refuses_an_unknown_service():
    result = subprocess.run([sys.executable, "-m", "hapex.cli", "serve", "everything"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_the_local_intake_process_never_receives_the_key_or_agent_only_secrets():
    from hapex.localstack.stack import environment_for

    env = {"CREDENTIAL_ENCRYPTION_KEY": "k", "CREDENTIAL_ENCRYPTION_KEYS_RETIRED": "r", "AGENT_ADMIN_TOKEN": "a",
           "AGENT_SERVICE_TOKEN": "s", "INTAKE_SESSION_SECRET": "i", "DATABASE_URL": "owner",
           "INTAKE_DATABASE_URL": "in", "AGENT_DATABASE_URL": "ag", "HAPEX_GOOGLE_CLIENT_SECRET": "gs",
           "HAPEX_GOOGLE_CLIENT_ID": "gid", "ANTHROPIC_API_KEY": "sk"}
    env.update({"HAPEX_SMTP_PASSWORD": "smtp", "AGENT_SERVICE_TOKEN_PREVIOUS": "prev", "AWS_SECRET_ACCESS_KEY": "x",
                "CREDENTIAL_ENCRYPTION_KEY_NEXT": "n", "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS": "1"})
    assert environment_for("intake", env) == {"AGENT_SERVICE_TOKEN": "s", "INTAKE_SESSION_SECRET": "i",
                                              "INTAKE_DATABASE_URL": "in", "HAPEX_GOOGLE_CLIENT_ID": "gid"}
    agent = environment_for("agent", env)
    assert "INTAKE_SESSION_SECRET" not in agent and "DATABASE_URL" not in agent
    assert agent["CREDENTIAL_ENCRYPTION_KEY"] == "k"
