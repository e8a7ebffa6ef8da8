"""`hapex credentials rotate`: re-encrypt every credential, every stored step output and every
sealed TOTP secret still under a retired key.

Rows are listed in batches by credential_id through a SECURITY DEFINER function that
returns ids only; each client's rows are then read and rewritten in that client's tenant
transaction, each update a compare-and-swap on the row's revision. A row changed meanwhile
is left alone and retried in another pass; an interrupted run is resumed by running the
command again, since the database itself records which rows are still to move.

Rolling out a new key: first deploy it everywhere in CREDENTIAL_ENCRYPTION_KEYS_RETIRED,
then make it CREDENTIAL_ENCRYPTION_KEY (moving the old one to the retired list), run this
command, and only then remove the old key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, TextIO

from agent_service.vault import outputs, repository, totp
from agent_service.vault.aead import AuthenticationFailed, UnsupportedParameters
from agent_service.vault.keyring import CredentialBinding, Keyring
from agent_service.vault.repository import ListedCredential
from agent_service.vault.service import UNREADABLE_REASON
from agent_service.vault.usage import reserve_encryptions
from shared.db import Database, tenant_transaction
from shared.db.pool import Connection

if TYPE_CHECKING:
    from agent_service.config import CredentialKeysConfig

DEFAULT_BATCH_SIZE = 500
MAX_PASSES = 5


@dataclass
class RotationProgress:
    """Running totals of one rotation, as its progress lines report them."""

    rotated: int = 0
    changed_meanwhile: int = 0
    unreadable: int = 0
    unknown_key: int = 0
    batches: int = 0
    passes: int = 0
    remaining: int = 0
    outputs_rotated: int = 0
    outputs_dropped: int = 0
    secrets_rotated: int = 0
    secrets_unreadable: int = 0


@dataclass(frozen=True)
class _Outcome:
    rotated: int = 0
    changed: int = 0
    unreadable: frozenset[uuid.UUID] = frozenset()
    unknown: frozenset[uuid.UUID] = frozenset()


def rotate_credentials(
    database: Database,
    keyring: Keyring,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Move every row not under the primary key to it; rows it cannot move are counted."""
    progress = RotationProgress()
    given_up: set[uuid.UUID] = set()
    for _ in range(MAX_PASSES):
        progress.passes += 1
        changed_this_pass = 0
        after: uuid.UUID | None = None
        while True:
            with database.transaction() as conn:
                batch = repository.rotation_batch(
                    conn, primary_key_id=keyring.primary_key_id, after=after, limit=batch_size
                )
            if not batch:
                break
            after = batch[-1].credential_id
            todo = sorted(
                (row for row in batch if row.credential_id not in given_up),
                key=lambda row: str(row.client_id),
            )
            for client_id, rows in groupby(todo, key=lambda row: row.client_id):
                with tenant_transaction(database, client_id) as conn:
                    outcome = _rotate_rows(conn, keyring, list(rows))
                progress.rotated += outcome.rotated
                progress.changed_meanwhile += outcome.changed
                progress.unreadable += len(outcome.unreadable)
                progress.unknown_key += len(outcome.unknown)
                changed_this_pass += outcome.changed
                given_up |= outcome.unreadable | outcome.unknown
            progress.batches += 1
            if on_batch is not None:
                on_batch(progress)
        if changed_this_pass == 0:
            break
    for kind in (_OUTPUTS, _TOTP_SECRETS):
        _reseal(database, keyring, kind, batch_size, progress, on_batch)
    with database.transaction() as conn:
        censuses = (repository.key_census(conn), outputs.key_census(conn), totp.key_census(conn))
    progress.remaining = sum(n for census in censuses for kid, n in census.items() if kid != keyring.primary_key_id)
    return progress


@dataclass(frozen=True)
class _Resealable:
    """One kind of sealed row that rotation re-seals beyond credentials: how to list a batch of its
    ids, name a row, re-seal it, and which totals its rotated and unreadable rows count in."""

    rotation_batch: Callable[..., Sequence[Any]]
    identity: Callable[[Any], tuple[uuid.UUID, Any]]
    rotate: Callable[[Connection, Keyring, Any], str]
    rotated_total: str
    unreadable_total: str


# Stored step outputs: one that no longer decrypts is dropped (it can never be shown or resumed from).
_OUTPUTS = _Resealable(outputs.rotation_batch, lambda row: (row.run_id, row.step_index), outputs.rotate,
                       rotated_total="outputs_rotated", unreadable_total="outputs_dropped")
# Sealed TOTP secrets: one that no longer decrypts stays (and keeps its key from being dropped): its
# user signs in with a recovery code and enrols again.
_TOTP_SECRETS = _Resealable(totp.rotation_batch, lambda row: (row.client_id, row.user_id), totp.rotate,
                            rotated_total="secrets_rotated", unreadable_total="secrets_unreadable")


def _reseal(database: Database, keyring: Keyring, kind: _Resealable, batch_size: int, progress: RotationProgress,
            on_batch: Callable[[RotationProgress], None] | None) -> None:
    """After credentials, the same way: ids in batches, each client's rows in its tenant transaction
    (per-client or per-run subkeys: no encryptions to count), a compare-and-swap per row. A row
    changed meanwhile is retried in another pass; an unreadable one or one under a key not given is not."""
    given_up: set[tuple[uuid.UUID, Any]] = set()
    for _ in range(MAX_PASSES):
        changed_this_pass = 0
        after: tuple[uuid.UUID, Any] | None = None
        while True:
            with database.transaction() as conn:
                batch = kind.rotation_batch(conn, primary_key_id=keyring.primary_key_id, after=after,
                                            limit=batch_size)
            if not batch:
                break
            after = kind.identity(batch[-1])
            todo = sorted((row for row in batch if kind.identity(row) not in given_up),
                          key=lambda row: str(row.client_id))
            for client_id, rows in groupby(todo, key=lambda row: row.client_id):
                listed = list(rows)
                with tenant_transaction(database, client_id) as conn:
                    results = [(row, kind.rotate(conn, keyring, row)) for row in listed]
                for row, result in results:
                    if result == "rotated":
                        setattr(progress, kind.rotated_total, getattr(progress, kind.rotated_total) + 1)
                    elif result == "changed":
                        changed_this_pass += 1
                        progress.changed_meanwhile += 1
                    else:
                        if result == "unreadable":
                            setattr(progress, kind.unreadable_total, getattr(progress, kind.unreadable_total) + 1)
                        else:
                            progress.unknown_key += 1
                        given_up.add(kind.identity(row))
            progress.batches += 1
            if on_batch is not None:
                on_batch(progress)
        if changed_this_pass == 0:
            break


def _rotate_rows(conn: Connection, keyring: Keyring, rows: list[ListedCredential]) -> _Outcome:
    """One client's rows of a batch, in that client's tenant transaction."""
    unknown = frozenset(row.credential_id for row in rows if row.key_id not in keyring.key_ids)
    known = [row for row in rows if row.credential_id not in unknown]
    if not known:
        return _Outcome(unknown=unknown)
    reserve_encryptions(conn, keyring, len(known))
    rotated = changed = 0
    unreadable: set[uuid.UUID] = set()
    for listed in known:
        current = repository.get_credential_at_revision(conn, listed)
        if current is None:
            changed += 1
            continue
        binding = CredentialBinding(
            listed.client_id, current.connection_id, current.credential_id, current.purpose
        )
        try:
            # Plaintext only passes between the two calls, never held in a local.
            sealed = keyring.encrypt(keyring.decrypt(current.sealed, binding), binding)
        except (AuthenticationFailed, UnsupportedParameters):
            repository.mark_connection_needs_reauth(
                conn, connection_id=current.connection_id, reason=UNREADABLE_REASON
            )
            unreadable.add(listed.credential_id)
            continue
        if repository.replace_credential(
            conn, credential_id=listed.credential_id, revision=listed.revision, sealed=sealed
        ):
            rotated += 1
        else:
            changed += 1
    return _Outcome(rotated, changed, frozenset(unreadable), unknown)


def run_rotate_command(
    out: TextIO, config: CredentialKeysConfig, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """The command's body: progress lines on `out`, 0 once no row is left under a retired key."""
    keyring = Keyring.from_config(config)
    database = Database(config.database_url, name="hapex-rotate").open()
    try:
        with database.transaction() as conn:
            census = repository.key_census(conn)
            output_census = outputs.key_census(conn)
            totp_census = totp.key_census(conn)
        to_move = sum(n for kid, n in census.items() if kid != keyring.primary_key_id)
        outputs_to_move = sum(n for kid, n in output_census.items() if kid != keyring.primary_key_id)
        secrets_to_move = sum(n for kid, n in totp_census.items() if kid != keyring.primary_key_id)
        print(
            f"{to_move} credential(s), {outputs_to_move} stored step output(s) and {secrets_to_move}"
            f" TOTP secret(s) to re-encrypt under"
            f" primary key {keyring.primary_key_id} in batches of {batch_size}",
            file=out,
            flush=True,
        )

        def report(progress: RotationProgress) -> None:
            print(
                f"batch {progress.batches}: {progress.rotated} rotated,"
                f" {progress.outputs_rotated} stored output(s) rotated,"
                f" {progress.secrets_rotated} TOTP secret(s) rotated,"
                f" {progress.changed_meanwhile} changed meanwhile (retried),"
                f" {progress.unreadable} unreadable, {progress.unknown_key} under unknown keys",
                file=out,
                flush=True,
            )

        progress = rotate_credentials(database, keyring, batch_size=batch_size, on_batch=report)
    finally:
        database.close()
    if progress.remaining:
        print(
            f"{progress.remaining} credential(s), stored output(s) or TOTP secret(s) are still not under the"
            f" primary key ({progress.unreadable} credential(s) failed to decrypt and their connections now need"
            f" reconnecting; {progress.secrets_unreadable} TOTP secret(s) failed to decrypt and their users"
            f" must enrol again; {progress.unknown_key} are under keys this command was not given)."
            " Keep the retired keys until they are gone.",
            file=out,
            flush=True,
        )
        return 1
    print(
        f"done: {progress.rotated} credential(s), {progress.outputs_rotated} stored output(s) and"
        f" {progress.secrets_rotated} TOTP secret(s) rotated"
        f"{f', {progress.outputs_dropped} undecryptable output(s) dropped' if progress.outputs_dropped else ''};"
        f" every credential, stored output and TOTP secret is under {keyring.primary_key_id};"
        " the retired keys can be removed from CREDENTIAL_ENCRYPTION_KEYS_RETIRED",
        file=out,
        flush=True,
    )
    return 0
