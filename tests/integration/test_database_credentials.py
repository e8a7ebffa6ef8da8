"""A database that refuses the service's role or password is a configuration error, said at once."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hapex.localstack.local_secrets import new_token
from tests.conftest import REPO_ROOT

PASSWORD = "pw-" + uuid.uuid4().hex


def refused_url(database) -> tuple[str, str]:
    """A URL the server refuses: a role it does not know, with a password (the test server trusts every
    role it knows, so an unknown role is how a real PostgreSQL refuses credentials here)."""
    role = "hapex_unknown_" + uuid.uuid4().hex[:8]
    params = conninfo_to_dict(database.owner_dsn)
    params.update(user=role, password=PASSWORD)
    return make_conninfo("", **params), role


def serve_env(service: str, variable: str, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CREDENTIAL_", "AGENT_", "INTAKE_", "HAPEX_"))}
    env.update({variable: url, "AGENT_SERVICE_TOKEN": new_token(), "LOG_LEVEL": "WARNING"})
    if service == "intake":
        env.update({"INTAKE_SESSION_SECRET": new_token(), "AGENT_SERVICE_URL": "https://agent.invalid"})
    else:
        env.update({"AGENT_ADMIN_TOKEN": new_token(),
                    "CREDENTIAL_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()})
    return env


@pytest.mark.parametrize(("service", "variable"), [("agent", "AGENT_DATABASE_URL"),
                                                   ("worker", "AGENT_DATABASE_URL"),
                                                   ("intake", "INTAKE_DATABASE_URL")])
def test_hapex_serve_names_the_variable_the_database_refuses_and_never_its_value(database, service, variable):
    url, role = refused_url(database)
    result = subprocess.run([sys.executable, "-m", "hapex.cli", "serve", service],
                            env=serve_env(service, variable, url), cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"hapex: configuration error: {variable} is refused by the database")
    assert "unavailable" not in result.stderr
    for secret in (PASSWORD, role, url):
        assert secret not in result.stderr
        assert secret not in result.stdout
    assert "Traceback" not in result.stderr
