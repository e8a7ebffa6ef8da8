"""Key rotation as Tink and Vault test theirs, through `hapex credentials rotate`."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from agent_service.config import AgentConfig
from agent_service.vault import Keyring, Purpose, Vault, open_vault, rotation
from agent_service.vault import repository as vault_repository
from agent_service.vault.startup import MissingCredentialKeys, check_credential_keys
from hapex import cli
from shared.db import tenant_transaction
from shared.secret import Secret
from tests.factories import make_client, make_connection

KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def store(vault: Vault, db, client, connection, purpose: Purpose, value: str) -> uuid.UUID:
    with tenant_transaction(db, client) as conn:
        return vault.store(conn, client_id=client, connection_id=connection, purpose=purpose,
                           secret=Secret(value))


def read(vault: Vault, client, connection, purpose: Purpose) -> str:
    with vault.open_for_step(client_id=client, connection_id=connection, purpose=purpose) as secret:
        return secret.reveal()


LAYOUT = {
    "Client 0": {"google": (Purpose.REFRESH_TOKEN, Purpose.ACCESS_TOKEN), "slack": (Purpose.REFRESH_TOKEN,)},
    "Client 1": {"google": (Purpose.REFRESH_TOKEN, Purpose.ACCESS_TOKEN)},
    "Client 2": {"google": (Purpose.REFRESH_TOKEN,), "airtable": (Purpose.API_KEY,)},
}


@pytest.fixture
def rows_under_key_1(intake_db, agent_db):
    """Three clients, seven credentials, every one written under key 1."""
    vault = Vault(Keyring(KEY_1), agent_db)
    written = {}
    for name, connections in LAYOUT.items():
        client = make_client(intake_db, name=name)
        for provider, purposes in connections.items():
            connection = make_connection(agent_db, client, provider=provider)
            for purpose in purposes:
                value = f"value-{provider}-{purpose.value}-{uuid.uuid4().hex}"
                store(vault, agent_db, client, connection, purpose, value)
                written[(client, connection, purpose)] = value
    return written


def snapshot(owner_conn) -> list[tuple]:
    return owner_conn.execute(
        "SELECT credential_id, key_id, nonce, ciphertext, revision, updated_at FROM credentials ORDER BY 1"
    ).fetchall()


def key_ids(owner_conn) -> dict[str, int]:
    return dict(owner_conn.execute("SELECT key_id, count(*) FROM credentials GROUP BY 1").fetchall())


def rotate_cli(monkeypatch, capsys, database, *, primary: bytes, retired: list[bytes], batch_size: int = 2):
    monkeypatch.setenv("AGENT_DATABASE_URL", database.agent_dsn)
    monkeypatch.setenv("CREDENTIAL_ENCRYPTION_KEY", b64(primary))
    if retired:
        monkeypatch.setenv("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", ",".join(b64(k) for k in retired))
    else:
        monkeypatch.delenv("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", raising=False)
    code = cli.main(["credentials", "rotate", "--batch-size", str(batch_size)])
    return code, capsys.readouterr().out


def test_rotation_moves_every_row_to_the_new_key_and_the_old_key_can_then_be_dropped(
    rows_under_key_1, agent_db, owner_conn, database, monkeypatch, capsys
):
    written = rows_under_key_1
    assert len(written) == 7
    k1, k2 = Keyring(KEY_1).primary_key_id, Keyring(KEY_2).primary_key_id
    assert key_ids(owner_conn) == {k1: 7}

    # Key 2 becomes primary with key 1 retired: every row still decrypts.
    both = Vault(Keyring(KEY_2, [KEY_1]), agent_db)
    for (client, connection, purpose), value in written.items():
        assert read(both, client, connection, purpose) == value

    code, out = rotate_cli(monkeypatch, capsys, database, primary=KEY_2, retired=[KEY_1], batch_size=2)
    assert code == 0, out
    assert "7 credential(s), 0 stored step output(s) and 0 TOTP secret(s) to re-encrypt" in out
    assert "batch 4: 7 rotated" in out  # 7 rows in batches of 2
    assert f"every credential, stored output and TOTP secret is under {k2}" in out
    assert key_ids(owner_conn) == {k2: 7}
    assert KEY_1.hex() not in out and b64(KEY_1) not in out and b64(KEY_2) not in out

    # Running it again changes nothing at all.
    before = snapshot(owner_conn)
    usage_before = owner_conn.execute("SELECT * FROM vault_key_usage ORDER BY 1").fetchall()
    code, out = rotate_cli(monkeypatch, capsys, database, primary=KEY_2, retired=[KEY_1])
    assert code == 0
    assert "0 credential(s), 0 stored step output(s) and 0 TOTP secret(s) to re-encrypt" in out
    assert "done: 0 credential(s), 0 stored output(s) and 0 TOTP secret(s) rotated" in out
    assert snapshot(owner_conn) == before
    assert owner_conn.execute("SELECT * FROM vault_key_usage ORDER BY 1").fetchall() == usage_before

    # Key 1 removed: the agent starts and every row decrypts.
    only_2 = Keyring(KEY_2)
    assert check_credential_keys(agent_db, only_2) == {k2: 7}
    vault = Vault(only_2, agent_db)
    for (client, connection, purpose), value in written.items():
        assert read(vault, client, connection, purpose) == value


def test_rotation_bumps_revisions_uses_fresh_nonces_and_counts_encryptions(
    rows_under_key_1, agent_db, owner_conn
):
    before = {row[0]: row for row in snapshot(owner_conn)}
    keyring = Keyring(KEY_2, [KEY_1])
    progress = rotation.rotate_credentials(agent_db, keyring, batch_size=3)
    assert (progress.rotated, progress.changed_meanwhile, progress.unreadable, progress.remaining) == (7, 0, 0, 0)
    for credential_id, key_id, nonce, ciphertext, revision, _ in snapshot(owner_conn):
        old = before[credential_id]
        assert key_id == keyring.primary_key_id
        assert nonce != old[2] and ciphertext != old[3] and revision == old[4] + 1
    usage = dict(owner_conn.execute("SELECT key_id, encryptions FROM vault_key_usage").fetchall())
    assert usage[keyring.primary_key_id] == 7


def test_an_interrupted_rotation_resumes_where_it_stopped(rows_under_key_1, agent_db, owner_conn):
    keyring = Keyring(KEY_2, [KEY_1])

    def stop_after_first_batch(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate_credentials(agent_db, keyring, batch_size=3, on_batch=stop_after_first_batch)
    k1, k2 = Keyring(KEY_1).primary_key_id, keyring.primary_key_id
    assert key_ids(owner_conn) == {k1: 4, k2: 3}
    progress = rotation.rotate_credentials(agent_db, keyring, batch_size=3)
    assert (progress.rotated, progress.remaining) == (4, 0)
    assert key_ids(owner_conn) == {k2: 7}
    vault = Vault(Keyring(KEY_2), agent_db)
    for (client, connection, purpose), value in rows_under_key_1.items():
        assert read(vault, client, connection, purpose) == value


def test_a_row_rewritten_during_rotation_is_not_overwritten_and_is_retried(
    rows_under_key_1, agent_db, owner_conn, monkeypatch
):
    """An agent still on the old config rewrites a row between listing and update."""
    (client, connection, purpose), _ = next(iter(rows_under_key_1.items()))
    old_replica = Vault(Keyring(KEY_1), agent_db)
    real_batch = vault_repository.rotation_batch
    rewrites = []

    def batch_then_concurrent_write(conn, **kwargs):
        rows = real_batch(conn, **kwargs)
        if not rewrites and rows:
            store(old_replica, agent_db, client, connection, purpose, "rewritten-meanwhile")
            rewrites.append(True)
        return rows

    monkeypatch.setattr(vault_repository, "rotation_batch", batch_then_concurrent_write)
    progress = rotation.rotate_credentials(agent_db, Keyring(KEY_2, [KEY_1]), batch_size=100)
    assert progress.changed_meanwhile == 1 and progress.passes == 2
    assert (progress.rotated, progress.remaining) == (7, 0)
    assert read(Vault(Keyring(KEY_2), agent_db), client, connection, purpose) == "rewritten-meanwhile"


def test_a_stale_revision_is_never_written(rows_under_key_1, agent_db, owner_conn):
    keyring = Keyring(KEY_2, [KEY_1])
    with agent_db.transaction() as conn:
        listed = vault_repository.rotation_batch(conn, primary_key_id=keyring.primary_key_id, after=None, limit=1)[0]
    stale = vault_repository.ListedCredential(listed.client_id, listed.credential_id, listed.key_id,
                                              listed.revision - 1)
    with tenant_transaction(agent_db, listed.client_id) as conn:
        outcome = rotation._rotate_rows(conn, keyring, [stale])
    assert (outcome.rotated, outcome.changed) == (0, 1)
    row = owner_conn.execute("SELECT key_id, revision FROM credentials WHERE credential_id = %s",
                             [listed.credential_id]).fetchone()
    assert row == (listed.key_id, listed.revision)


def test_a_tampered_row_is_reported_its_connection_marked_and_the_rest_rotated(
    rows_under_key_1, agent_db, owner_conn, database, monkeypatch, capsys
):
    (client, connection, purpose), _ = next(iter(rows_under_key_1.items()))
    owner_conn.execute(
        "UPDATE credentials SET nonce = set_byte(nonce, 0, get_byte(nonce, 0) # 1)"
        " WHERE connection_id = %s AND purpose = %s",
        [connection, purpose.value],
    )
    code, out = rotate_cli(monkeypatch, capsys, database, primary=KEY_2, retired=[KEY_1], batch_size=2)
    assert code == 1
    assert "1 credential(s), stored output(s) or TOTP secret(s) are still not under the primary key" in out
    assert "1 credential(s) failed to decrypt" in out
    k1, k2 = Keyring(KEY_1).primary_key_id, Keyring(KEY_2).primary_key_id
    assert key_ids(owner_conn) == {k1: 1, k2: 6}
    status = owner_conn.execute("SELECT status, status_reason FROM connections WHERE connection_id = %s",
                                [connection]).fetchone()
    assert status == ("needs_reauth", "credential_unreadable")
    # The client reconnecting replaces the row under the primary key; then key 1 can go.
    store(Vault(Keyring(KEY_2, [KEY_1]), agent_db), agent_db, client, connection, purpose, "reconnected")
    assert check_credential_keys(agent_db, Keyring(KEY_2)) == {k2: 7}


def test_rows_under_a_key_the_command_was_not_given_are_reported_not_touched(
    rows_under_key_1, agent_db, owner_conn, database, monkeypatch, capsys
):
    before = snapshot(owner_conn)
    key_3 = os.urandom(32)
    code, out = rotate_cli(monkeypatch, capsys, database, primary=key_3, retired=[KEY_2])
    assert code == 1 and "7 are under keys this command was not given" in out
    assert snapshot(owner_conn) == before


def test_rotate_refuses_a_malformed_key_naming_the_variable_only(monkeypatch, capsys, database):
    monkeypatch.setenv("AGENT_DATABASE_URL", database.agent_dsn)
    monkeypatch.setenv("CREDENTIAL_ENCRYPTION_KEY", b64(KEY_2))
    monkeypatch.setenv("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", "bm90LWEta2V5")
    assert cli.main(["credentials", "rotate"]) == 2
    err = capsys.readouterr().err
    assert "CREDENTIAL_ENCRYPTION_KEYS_RETIRED" in err and "bm90LWEta2V5" not in err


def test_the_agent_with_only_the_new_key_refuses_to_start_before_rotation(rows_under_key_1, agent_db):
    with pytest.raises(MissingCredentialKeys) as raised:
        check_credential_keys(agent_db, Keyring(KEY_2))
    assert raised.value.missing == {Keyring(KEY_1).primary_key_id: 7}


def test_open_vault_reads_keys_from_the_agent_config(rows_under_key_1, agent_db):
    config = AgentConfig.from_env({
        "AGENT_DATABASE_URL": "postgresql://unused/hapex?sslmode=verify-full",
        "AGENT_SERVICE_TOKEN": "service-token-" + "a1b2c3d4e5f6g7h8i9j0" * 2,
        "AGENT_ADMIN_TOKEN": "admin-token-" + "z9y8x7w6v5u4t3s2r1q0" * 2,
        "CREDENTIAL_ENCRYPTION_KEY": b64(KEY_2),
        "CREDENTIAL_ENCRYPTION_KEYS_RETIRED": b64(KEY_1),
    })
    vault = open_vault(config, agent_db)
    (client, connection, purpose), value = next(iter(rows_under_key_1.items()))
    assert read(vault, client, connection, purpose) == value
