"""An agent missing a key the database needs refuses to start, at deploy time, saying which."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from agent_service.vault import Keyring, MissingCredentialKeys, Purpose, Vault, VaultStartupError
from agent_service.vault.keys import key_id
from agent_service.vault.service import USAGE_WARNING_AT
from agent_service.vault.startup import check_credential_keys
from hapex.localstack import embedded_db
from shared.db import Database, tenant_transaction
from shared.db.migrate import apply_migrations, discover
from shared.secret import Secret
from tests.conftest import REPO_ROOT, drop_database
from tests.factories import make_client, make_connection

KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)
KEY_3 = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def agent_env(database, *, primary: bytes, retired: list[bytes] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDENTIAL_", "AGENT_"))}
    env.update({
        "AGENT_DATABASE_URL": database.agent_dsn,
        "AGENT_SERVICE_TOKEN": "service-token-" + uuid.uuid4().hex,
        "AGENT_ADMIN_TOKEN": "admin-token-" + uuid.uuid4().hex,
        "CREDENTIAL_ENCRYPTION_KEY": b64(primary),
        "LOG_LEVEL": "WARNING",
    })
    if retired:
        env["CREDENTIAL_ENCRYPTION_KEYS_RETIRED"] = ",".join(b64(k) for k in retired)
    return env


@pytest.fixture
def rows_under_two_keys(intake_db, agent_db):
    """Three credentials under key 1 and one under key 2, across two clients."""
    for key, count in ((KEY_1, 3), (KEY_2, 1)):
        vault = Vault(Keyring(key), agent_db)
        for _ in range(count):
            client = make_client(intake_db)
            connection = make_connection(agent_db, client)
            with tenant_transaction(agent_db, client) as conn:
                vault.store(conn, client_id=client, connection_id=connection, purpose=Purpose.REFRESH_TOKEN,
                            secret=Secret(f"token-{uuid.uuid4().hex}"))


def assert_names_ids_and_counts_never_keys(text: str) -> None:
    assert "key ids this agent does not have" in text
    assert f"{key_id(KEY_1)} (3 credentials)" in text
    assert f"{key_id(KEY_2)} (1 credential)" in text
    assert "CREDENTIAL_ENCRYPTION_KEYS_RETIRED" in text
    for key in (KEY_1, KEY_2, KEY_3):
        assert b64(key) not in text and key.hex() not in text and b64(key)[:16] not in text


def test_the_check_names_every_missing_key_id_and_its_row_count(rows_under_two_keys, agent_db):
    with pytest.raises(MissingCredentialKeys) as raised:
        check_credential_keys(agent_db, Keyring(KEY_3))
    assert raised.value.missing == {key_id(KEY_1): 3, key_id(KEY_2): 1}
    assert_names_ids_and_counts_never_keys(str(raised.value))
    assert f"{key_id(KEY_3)} (primary)" in str(raised.value)


def test_one_missing_key_among_several_is_still_refused(rows_under_two_keys, agent_db):
    with pytest.raises(MissingCredentialKeys) as raised:
        check_credential_keys(agent_db, Keyring(KEY_2, [KEY_3]))
    assert raised.value.missing == {key_id(KEY_1): 3}


def test_the_check_passes_when_every_key_id_is_held_and_notes_retired_keys_in_use(
    rows_under_two_keys, agent_db, caplog
):
    caplog.set_level(logging.INFO, logger="agent_service.vault")
    census = check_credential_keys(agent_db, Keyring(KEY_3, [KEY_2, KEY_1]))
    assert census == {key_id(KEY_1): 3, key_id(KEY_2): 1}
    in_use = [r for r in caplog.records if "still under a retired key" in r.getMessage()]
    assert {(r.key_id, r.count) for r in in_use} == {(key_id(KEY_1), 3), (key_id(KEY_2), 1)}


def test_an_empty_database_starts_with_any_key(agent_db):
    assert check_credential_keys(agent_db, Keyring(KEY_3)) == {}


def test_the_start_up_check_warns_when_the_primary_key_is_near_its_limit(agent_db, owner_conn, caplog):
    owner_conn.execute("INSERT INTO vault_key_usage (key_id, encryptions) VALUES (%s, %s)",
                       [key_id(KEY_1), USAGE_WARNING_AT + 5])
    caplog.set_level(logging.WARNING, logger="agent_service.vault")
    check_credential_keys(agent_db, Keyring(KEY_1))
    assert [r.key_id for r in caplog.records if "2^32" in r.getMessage()] == [key_id(KEY_1)]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("service", ["agent", "worker"])
def test_hapex_serve_exits_non_zero_naming_key_ids_and_counts(rows_under_two_keys, database, service):
    result = run(["-m", "hapex.cli", "serve", service], agent_env(database, primary=KEY_3))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("hapex: cannot start: ")
    assert_names_ids_and_counts_never_keys(result.stderr)
    assert "Traceback" not in result.stderr


def test_the_agents_wsgi_module_refuses_to_load(rows_under_two_keys, database):
    result = run(["-c", "import agent_service.wsgi"], agent_env(database, primary=KEY_3, retired=[KEY_2]))
    assert result.returncode != 0
    assert "MissingCredentialKeys" in result.stderr
    assert f"{key_id(KEY_1)} (3 credentials)" in result.stderr
    assert b64(KEY_3) not in result.stderr and b64(KEY_1) not in result.stderr


def test_the_agents_wsgi_module_loads_with_every_key_and_installs_the_vault(rows_under_two_keys, database):
    script = (
        "import agent_service.wsgi as w\n"
        "v = w.app.extensions['hapex_vault']\n"
        "print(v.keyring.primary_key_id, sorted(v.keyring.retired_key_ids))\n"
    )
    result = run(["-c", script], agent_env(database, primary=KEY_3, retired=[KEY_1, KEY_2]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == key_id(KEY_3)


def test_a_worker_refuses_to_run_jobs(rows_under_two_keys, database):
    script = (
        "from agent_service.config import AgentConfig\n"
        "from agent_service.worker import run_worker\n"
        "run_worker(AgentConfig.from_env())\n"
    )
    result = run(["-c", script], agent_env(database, primary=KEY_2))
    assert result.returncode != 0
    assert "MissingCredentialKeys" in result.stderr and f"{key_id(KEY_1)} (3 credentials)" in result.stderr
    assert "worker starting" not in result.stderr


def test_a_database_without_the_vault_migration_is_named_as_such(pg_server, tmp_path):
    for migration in discover():
        if migration.version < 4:
            shutil.copy(migration.path, tmp_path / migration.path.name)
    name = f"hapex_pre_vault_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = embedded_db.with_database(pg_server, name)
        apply_migrations(dsn, tmp_path)
        db = Database(embedded_db.as_role(dsn, "hapex_agent")).open()
        try:
            with pytest.raises(VaultStartupError, match="hapex db migrate"):
                check_credential_keys(db, Keyring(KEY_1))
        finally:
            db.close()
    finally:
        drop_database(pg_server, name)
