"""Storing credentials encrypted, and handing their plaintext to one step at a time.

Writes join the caller's tenant transaction (a refreshed token is saved together with the
connection's new state); reads open their own short transaction, so no database
transaction stays open while a step talks to a provider. The plaintext is a StepSecret
that stops answering when the step's `with` block ends; nothing here keeps it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agent_service.vault import outputs, repository
from agent_service.vault.aead import AuthenticationFailed, UnsupportedParameters
from agent_service.vault.keyring import CredentialBinding, Keyring, Purpose, UnknownKey
from agent_service.vault.outputs import StoredOutput
from agent_service.vault.usage import (  # noqa: F401 - the vault's public names
    RANDOM_NONCE_LIMIT,
    USAGE_WARNING_AT,
    USAGE_WARNING_EVERY,
    KeyExhausted,
    reserve_encryptions,
    warn_about_usage,
)
from shared.db import Database, tenant_transaction
from shared.db.pool import Connection
from shared.errors import HapexError
from shared.secret import Secret

logger = logging.getLogger(__name__)

MAX_PLAINTEXT_BYTES = 64 * 1024
UNREADABLE_REASON = "credential_unreadable"
ACCESS_REASONS = ("run_step", "token_refresh", "revocation", "health_check", "other", "step_test", "poll",
                  "trigger_item")


def this_process() -> str:
    """host:pid of this process, which tells one worker or API process from another."""
    return f"{socket.gethostname()[:150]}:{os.getpid()}"


@dataclass(frozen=True)
class Accessor:
    """Who is handed a credential's plaintext, and for what: recorded as audit metadata."""

    service: str
    run_id: uuid.UUID | None = None
    step_index: int | None = None
    reason: str = "run_step"
    host: str = field(default_factory=this_process)

    def __post_init__(self) -> None:
        if self.reason not in ACCESS_REASONS:
            raise ValueError("unknown credential access reason")


# When a caller names no accessor: the API process, for an unspecified reason.
DEFAULT_SERVICE = "agent"


class VaultError(HapexError):
    name = "vault_error"
    message = "The credential vault could not complete the operation."


class ConnectionNotFound(VaultError):
    name = "vault_connection_not_found"
    message = "This client has no such connection."


class CredentialNotFound(VaultError):
    name = "credential_not_found"
    message = "This connection has no stored credential for that purpose."


class CredentialUnreadable(VaultError):
    name = "credential_unreadable"
    message = "The stored credential failed to decrypt; the connection must be reconnected."


class CredentialKeyMissing(VaultError):
    name = "credential_key_missing"
    message = "The stored credential is under a key this agent does not hold."


class InvalidCredential(VaultError):
    name = "invalid_credential"
    message = "A credential must be non-empty text of at most 64 KiB, passed as a Secret."


class SecretExpired(VaultError):
    name = "secret_expired"
    message = "The step that opened this secret has ended; open the credential again."


class StepSecret(Secret):
    """A credential's plaintext that stops answering once the step that opened it ends."""

    __slots__ = ("_open",)

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self._open = True

    def reveal(self) -> str:
        if not self._open:
            raise SecretExpired()
        return str(self._value)

    def matches(self, candidate: str | bytes | None) -> bool:
        if not self._open:
            raise SecretExpired()
        return super().matches(candidate)

    def last4(self) -> str:
        if not self._open:
            raise SecretExpired()
        return super().last4()

    def expire(self) -> None:
        """Drop this object's reference to the plaintext; later reveals raise SecretExpired."""
        self._value = ""
        self._open = False


class Vault:
    """The agent's one way to store a credential or get its plaintext for a step."""

    def __init__(self, keyring: Keyring, database: Database) -> None:
        self._keyring = keyring
        self._db = database

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def store(
        self,
        conn: Connection,
        *,
        client_id: uuid.UUID | str,
        connection_id: uuid.UUID | str,
        purpose: Purpose | str,
        secret: Secret,
    ) -> uuid.UUID:
        """Encrypt and save (insert or replace) a connection's credential; its row id."""
        _plaintext_of(secret)  # refuse a bad value before touching the database
        purpose = Purpose(purpose)
        client_id, connection_id = _as_uuid(client_id), _as_uuid(connection_id)
        if not repository.lock_connection(conn, client_id=client_id, connection_id=connection_id):
            raise ConnectionNotFound()
        existing = repository.lock_credential(conn, connection_id=connection_id, purpose=purpose)
        credential_id = existing[0] if existing else uuid.uuid4()
        binding = CredentialBinding(client_id, connection_id, credential_id, purpose)
        reserve_encryptions(conn, self._keyring, 1)
        # Never bound to a local here: a traceback capturing locals must not hold it.
        sealed = self._keyring.encrypt(_plaintext_of(secret), binding)
        if existing is None:
            repository.insert_credential(
                conn,
                client_id=client_id,
                credential_id=credential_id,
                connection_id=connection_id,
                purpose=purpose,
                sealed=sealed,
            )
        elif not repository.replace_credential(
            conn, credential_id=credential_id, revision=existing[1], sealed=sealed
        ):
            raise VaultError("The credential changed while it was locked.")  # pragma: no cover
        return credential_id

    @contextmanager
    def open_for_step(
        self, *, client_id: uuid.UUID | str, connection_id: uuid.UUID | str, purpose: Purpose | str,
        accessor: Accessor | None = None,
    ) -> Iterator[StepSecret]:
        """The credential's plaintext for the duration of the `with` block, and no longer.

        The access is recorded (who, which run and step, when) in the same transaction that
        reads the ciphertext, before the plaintext is handed out.
        """
        secret: StepSecret | None = None
        try:
            with tenant_transaction(self._db, _as_uuid(client_id)) as conn:
                secret = self.unseal_in_transaction(conn, client_id=client_id, connection_id=connection_id,
                                                    purpose=purpose, accessor=accessor)
        except BaseException:
            if secret is not None:
                secret.expire()
            raise
        if secret is None:
            raise CredentialUnreadable()
        try:
            yield secret
        finally:
            secret.expire()

    @contextmanager
    def open_in_transaction(
        self, conn: Connection, *, client_id: uuid.UUID | str, connection_id: uuid.UUID | str,
        purpose: Purpose | str, accessor: Accessor | None = None,
    ) -> Iterator[StepSecret]:
        """As open_for_step, read through the caller's tenant transaction (which may hold the
        connection row locked, as a token refresh does); an unreadable row is marked there.

        The access is recorded in a transaction of its own, committed before the plaintext is
        handed out, so that it stays recorded even if the caller's transaction rolls back.
        """
        purpose = Purpose(purpose)
        client_id, connection_id = _as_uuid(client_id), _as_uuid(connection_id)
        row = repository.get_credential(conn, connection_id=connection_id, purpose=purpose)
        try:
            secret = self._decrypt(row, client_id, connection_id, purpose)
        except CredentialUnreadable:
            self._mark_unreadable(conn, client_id, connection_id)
            raise
        try:
            with tenant_transaction(self._db, client_id) as audit:
                _record_access(audit, client_id, connection_id, purpose, accessor)
            yield secret
        finally:
            secret.expire()

    def unseal_in_transaction(
        self, conn: Connection, *, client_id: uuid.UUID | str, connection_id: uuid.UUID | str,
        purpose: Purpose | str, accessor: Accessor | None = None,
    ) -> StepSecret | None:
        """The credential's plaintext, read and its access recorded in the caller's tenant
        transaction (the one that marks the step's attempt: one commit instead of two).

        The caller uses it only once that transaction has committed (so the access is on
        record first) and expires it when the step's call ends, or at once if the commit
        fails. None when the row failed to decrypt: the connection is then marked in that
        same transaction and the caller raises CredentialUnreadable after the commit.
        CredentialNotFound and CredentialKeyMissing are raised before anything is written.
        """
        purpose = Purpose(purpose)
        client_id, connection_id = _as_uuid(client_id), _as_uuid(connection_id)
        row = repository.get_credential(conn, connection_id=connection_id, purpose=purpose)
        return self.unseal_row_in_transaction(conn, client_id=client_id, connection_id=connection_id,
                                              purpose=purpose, row=row, accessor=accessor)

    def unseal_row_in_transaction(
        self, conn: Connection, *, client_id: uuid.UUID | str, connection_id: uuid.UUID | str,
        purpose: Purpose | str, row: repository.CredentialRow | None, accessor: Accessor | None = None,
    ) -> StepSecret | None:
        """As unseal_in_transaction, for the credential row (None: there is none) that the caller's
        transaction read with the step's connection, in one statement (connection_and_credential_for_step).
        """
        purpose = Purpose(purpose)
        client_id, connection_id = _as_uuid(client_id), _as_uuid(connection_id)
        if row is not None and (row.connection_id != connection_id or row.purpose is not purpose):
            raise ValueError("the credential row read is not this connection's for this purpose")
        try:
            secret = self._decrypt(row, client_id, connection_id, purpose)
        except CredentialUnreadable:
            self._mark_unreadable(conn, client_id, connection_id)
            return None
        try:
            _record_access(conn, client_id, connection_id, purpose, accessor)
        except BaseException:
            secret.expire()
            raise
        return secret

    def seal_step_output(
        self, conn: Connection, *, client_id: uuid.UUID | str, run_id: uuid.UUID | str, step_index: int,
        output: dict[str, Any],
    ) -> bool:
        """Store a step's output sealed, in the caller's tenant transaction (the one recording
        the step). False, and nothing written, if its automation no longer stores outputs;
        OutputTooLarge before anything is written if it is too large to store."""
        return outputs.seal(conn, self._keyring, client_id=_as_uuid(client_id), run_id=_as_uuid(run_id),
                            step_index=step_index, output=output)

    def open_step_outputs(self, conn: Connection, *, client_id: uuid.UUID | str,
                          run_id: uuid.UUID | str) -> list[StoredOutput]:
        """The stored outputs of one run of the transaction's client, opened, in step order."""
        return outputs.open_run(conn, self._keyring, client_id=_as_uuid(client_id), run_id=_as_uuid(run_id))

    def open_client_outputs(self, conn: Connection, *, client_id: uuid.UUID | str,
                            after: tuple[uuid.UUID, int] | None, limit: int) -> list[StoredOutput]:
        """One page of every stored output of the transaction's client, opened, by run then step."""
        return outputs.open_page(conn, self._keyring, client_id=_as_uuid(client_id), after=after, limit=limit)

    def _decrypt(
        self, row: repository.CredentialRow | None, client_id: uuid.UUID, connection_id: uuid.UUID,
        purpose: Purpose,
    ) -> StepSecret:
        if row is None:
            raise CredentialNotFound()
        binding = CredentialBinding(client_id, connection_id, row.credential_id, purpose)
        try:
            return StepSecret(self._keyring.decrypt(row.sealed, binding).decode("utf-8"))
        except UnknownKey:
            # A deploy problem (a key not rolled out to this replica), not this row's fault:
            # the connection stays as it is and the operator is told.
            logger.error(
                "credential under a key this agent does not hold",
                extra={"client_id": client_id, "connection_id": connection_id, "key_id": row.sealed.key_id},
            )
            raise CredentialKeyMissing() from None
        except (AuthenticationFailed, UnsupportedParameters, UnicodeDecodeError):
            raise CredentialUnreadable() from None

    def _mark_unreadable(self, conn: Connection, client_id: uuid.UUID, connection_id: uuid.UUID) -> None:
        """This connection alone stops; its client sees a reconnect link, others go on."""
        repository.mark_connection_needs_reauth(conn, connection_id=connection_id, reason=UNREADABLE_REASON)
        logger.error(
            "credential failed to decrypt; connection marked needs_reauth",
            extra={"client_id": client_id, "connection_id": connection_id, "error_class": "AuthenticationFailed"},
        )


def _record_access(conn: Connection, client_id: uuid.UUID, connection_id: uuid.UUID, purpose: Purpose,
                   accessor: Accessor | None) -> None:
    accessor = accessor or Accessor(DEFAULT_SERVICE, reason="other")
    repository.record_access(
        conn, client_id=client_id, connection_id=connection_id, purpose=purpose, reason=accessor.reason,
        service=accessor.service, accessor=accessor.host, run_id=accessor.run_id, step_index=accessor.step_index,
    )


def _plaintext_of(secret: Secret) -> bytes:
    if not isinstance(secret, Secret):
        raise InvalidCredential()
    value = secret.reveal()
    if not isinstance(value, str):
        raise InvalidCredential()
    plaintext = value.encode("utf-8")
    if not plaintext or len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise InvalidCredential()
    return plaintext


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
