"""Step outputs a client chose to store: sealed like credentials, opened only by the agent.

An output is JSON, sealed with AES-256-GCM under a subkey of the primary credential key
derived for its client's run, and bound to its client, run and step (OutputBinding), so a
copied ciphertext opens nowhere else and a credential never opens as an output. Writes join
the caller's tenant transaction, so an output is stored in the same commit as its step's
record, or not at all.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_service.vault.aead import AuthenticationFailed, UnsupportedParameters
from agent_service.vault.keyring import Keyring, OutputBinding, Sealed, UnknownKey
from shared.db import QuerySet, execute, fetch_all, fetch_optional
from shared.db.pool import Connection
from shared.errors import HapexError

logger = logging.getLogger(__name__)
QUERIES = QuerySet(Path(__file__).with_name("outputs.sql"))

# Larger than any capability returns (a Drive file is at most 5 MB): a guard, not a policy.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024


class OutputTooLarge(HapexError, ValueError):
    name = "output_too_large"
    message = "This step's output is larger than Hapex stores."


@dataclass(frozen=True)
class StoredOutput:
    """One step's stored output as opened for its client; `output` is None when unreadable."""

    run_id: uuid.UUID
    step_index: int
    capability: str
    output: dict[str, Any] | None

    @property
    def unreadable(self) -> bool:
        return self.output is None

    def as_json(self) -> dict[str, Any]:
        """What the agent's API answers for it."""
        body = {"run_id": str(self.run_id), "step_index": self.step_index, "capability": self.capability,
                "output": self.output}
        return body | ({"unreadable": True} if self.unreadable else {})

    def __repr__(self) -> str:
        return f"StoredOutput(run_id={self.run_id}, step_index={self.step_index}, capability={self.capability!r}, " \
            f"output={'<unreadable>' if self.output is None else '<hidden>'})"


@dataclass(frozen=True)
class ListedOutput:
    """An output rotation still has to move: ids and key id, no ciphertext."""

    client_id: uuid.UUID
    run_id: uuid.UUID
    step_index: int
    key_id: str


def encode(output: dict[str, Any]) -> bytes:
    plaintext = json.dumps(output, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(plaintext) > MAX_OUTPUT_BYTES:
        raise OutputTooLarge()
    return plaintext


def seal(conn: Connection, keyring: Keyring, *, client_id: uuid.UUID, run_id: uuid.UUID, step_index: int,
         output: dict[str, Any]) -> bool:
    """Store a step's output sealed in the caller's tenant transaction; False if its automation
    no longer stores outputs (nothing is written then)."""
    # Sealed under the run's own subkey (see OutputBinding): not counted against the credential key.
    sealed = keyring.encrypt(encode(output), OutputBinding(client_id, run_id, step_index))
    row = fetch_optional(conn, QUERIES["seal_output"], run_id=run_id, step_index=step_index,
                         ciphertext=sealed.ciphertext, nonce=sealed.nonce, key_id=sealed.key_id)
    return row is not None


def _sealed(row: dict[str, Any]) -> Sealed:
    return Sealed(row["output_key_id"], bytes(row["output_nonce"]), bytes(row["output_ciphertext"]))


def open_sealed(keyring: Keyring, sealed: Sealed, binding: OutputBinding) -> dict[str, Any] | None:
    """The output, or None when it does not decrypt (tampered, or under a key not held)."""
    try:
        value = json.loads(keyring.decrypt(sealed, binding).decode("utf-8"))
    except UnknownKey:
        logger.error("stored step output under a key this agent does not hold",
                     extra={"client_id": binding.client_id, "run_id": binding.run_id,
                            "step_index": binding.step_index, "key_id": sealed.key_id})
        return None
    except (AuthenticationFailed, ValueError):  # ValueError: bad parameters, UTF-8 or JSON
        logger.error("stored step output failed to decrypt",
                     extra={"client_id": binding.client_id, "run_id": binding.run_id,
                            "step_index": binding.step_index, "error_class": "AuthenticationFailed"})
        return None
    return value if isinstance(value, dict) else None


def run_exists(conn: Connection, *, run_id: uuid.UUID) -> bool:
    return fetch_optional(conn, QUERIES["run_exists"], run_id=run_id) is not None


def _opened(keyring: Keyring, client_id: uuid.UUID, row: dict[str, Any]) -> StoredOutput:
    binding = OutputBinding(client_id, row["run_id"], row["step_index"])
    return StoredOutput(row["run_id"], row["step_index"], row["capability"],
                        open_sealed(keyring, _sealed(row), binding))


def open_run(conn: Connection, keyring: Keyring, *, client_id: uuid.UUID, run_id: uuid.UUID) -> list[StoredOutput]:
    """Every stored output of one run of the transaction's client, in step order."""
    return [_opened(keyring, client_id, {**row, "run_id": run_id})
            for row in fetch_all(conn, QUERIES["list_outputs"], run_id=run_id)]


def open_page(conn: Connection, keyring: Keyring, *, client_id: uuid.UUID, after: tuple[uuid.UUID, int] | None,
              limit: int) -> list[StoredOutput]:
    """One page of every stored output of the transaction's client, by run then step (for its export)."""
    after_run, after_step = after if after is not None else (None, None)
    rows = fetch_all(conn, QUERIES["list_client_outputs"], after_run=after_run, after_step=after_step, limit=limit)
    return [_opened(keyring, client_id, row) for row in rows]


def key_census(conn: Connection) -> dict[str, int]:
    """Stored outputs per key id across every client."""
    return {row["key_id"]: int(row["outputs"]) for row in fetch_all(conn, QUERIES["output_key_census"])}


def rotation_batch(conn: Connection, *, primary_key_id: str, after: tuple[uuid.UUID, int] | None,
                   limit: int) -> list[ListedOutput]:
    after_run, after_step = after if after is not None else (None, None)
    rows = fetch_all(conn, QUERIES["output_rotation_batch"], primary_key_id=primary_key_id, after_run=after_run,
                     after_step=after_step, limit=limit)
    return [ListedOutput(**row) for row in rows]


def rotate(conn: Connection, keyring: Keyring, listed: ListedOutput) -> str:
    """Re-seal one output under the primary key: 'rotated', 'changed' (left for another pass),
    'unreadable' (dropped: it can never be opened again) or 'unknown_key'."""
    if listed.key_id not in keyring.key_ids:
        return "unknown_key"
    row = fetch_optional(conn, QUERIES["lock_output"], run_id=listed.run_id, step_index=listed.step_index)
    if row is None or row["output_key_id"] != listed.key_id:
        return "changed"
    current = _sealed(row)
    binding = OutputBinding(listed.client_id, listed.run_id, listed.step_index)
    try:
        # Plaintext only passes between the two calls, never held in a local.
        sealed = keyring.encrypt(keyring.decrypt(current, binding), binding)
    except (AuthenticationFailed, UnsupportedParameters):
        execute(conn, QUERIES["forget_output"], run_id=listed.run_id, step_index=listed.step_index,
                old_nonce=current.nonce)
        logger.error("stored step output failed to decrypt during rotation; dropped",
                     extra={"client_id": listed.client_id, "run_id": listed.run_id, "step_index": listed.step_index,
                            "error_class": "AuthenticationFailed"})
        return "unreadable"
    changed = execute(conn, QUERIES["replace_output"], run_id=listed.run_id, step_index=listed.step_index,
                      ciphertext=sealed.ciphertext, nonce=sealed.nonce, key_id=sealed.key_id,
                      old_nonce=current.nonce)
    return "rotated" if changed == 1 else "changed"
