"""The keys the agent holds: the primary encrypts, retired keys only decrypt.

Every ciphertext is bound (as AES-GCM associated data) to the client, connection,
credential row and purpose it was written for, and to the key id stored beside it, so a
ciphertext copied anywhere else fails to authenticate.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent_service.vault.aead import AES256GCM, KEY_BYTES, new_nonce
from agent_service.vault.keys import key_id, parse_key, parse_key_list
from shared.errors import HapexError

if TYPE_CHECKING:
    from agent_service.config import AgentConfig, CredentialKeysConfig

PRIMARY_VARIABLE = "CREDENTIAL_ENCRYPTION_KEY"
RETIRED_VARIABLE = "CREDENTIAL_ENCRYPTION_KEYS_RETIRED"
# Changing these strings makes every stored ciphertext unreadable: they name the formats,
# and being different they keep a credential from ever opening as a step output or back.
_AAD_CONTEXT = b"hapex/credential/v1"
_OUTPUT_AAD_CONTEXT = b"hapex/step-output/v1"
_TOTP_AAD_CONTEXT = b"hapex/totp-secret/v1"


def _length_prefixed(*fields: bytes) -> bytes:
    """Each field preceded by its length, so no two bindings can encode to the same bytes."""
    return b"".join(len(field).to_bytes(2, "big") + field for field in fields)


class Binding(Protocol):
    """Where a ciphertext belongs, as the associated data it is sealed with."""

    def associated_data(self, key_id: str) -> bytes: ...

    def key_context(self) -> bytes | None:
        """None to seal under the key itself, or the context of a subkey derived from it."""
        ...


class Purpose(StrEnum):
    """What a credential is for; the credentials.purpose check constraint lists the same."""

    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a label, not a password
    ACCESS_TOKEN = "access_token"  # noqa: S105 - a label, not a password
    API_KEY = "api_key"


class UnknownKey(HapexError):
    name = "unknown_key"
    message = "The ciphertext names a key id this agent does not hold."

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"{self.message} ({key_id})")


@dataclass(frozen=True)
class CredentialBinding:
    """Where a ciphertext belongs; any difference at decryption time is a rejection."""

    client_id: uuid.UUID
    connection_id: uuid.UUID
    credential_id: uuid.UUID
    purpose: Purpose

    def associated_data(self, key_id: str) -> bytes:
        return _length_prefixed(
            _AAD_CONTEXT,
            self.client_id.bytes,
            self.connection_id.bytes,
            self.credential_id.bytes,
            Purpose(self.purpose).value.encode(),
            key_id.encode(),
        )

    def key_context(self) -> None:
        return None


@dataclass(frozen=True)
class OutputBinding:
    """A stored step output belongs to one step of one run of one client.

    Outputs are sealed under a subkey derived (HKDF-SHA256) from the credential key for each
    run of each client: a run seals a handful of outputs, so no subkey comes near the random-
    nonce limit, and storing outputs never draws on the credential key's own 2^32 budget,
    which a client running many automations could otherwise exhaust for everyone.
    """

    client_id: uuid.UUID
    run_id: uuid.UUID
    step_index: int

    def key_context(self) -> bytes:
        return _length_prefixed(_OUTPUT_AAD_CONTEXT, self.client_id.bytes, self.run_id.bytes)

    def associated_data(self, key_id: str) -> bytes:
        return _length_prefixed(
            _OUTPUT_AAD_CONTEXT,
            self.client_id.bytes,
            self.run_id.bytes,
            self.step_index.to_bytes(4, "big"),
            key_id.encode(),
        )


@dataclass(frozen=True)
class SecondFactorBinding:
    """A user's TOTP secret belongs to that user of that client. Sealed under a per-client subkey,
    so enrolments never draw on the credential key's own nonce budget."""

    client_id: uuid.UUID
    user_id: uuid.UUID

    def key_context(self) -> bytes:
        return _length_prefixed(_TOTP_AAD_CONTEXT, self.client_id.bytes)

    def associated_data(self, key_id: str) -> bytes:
        return _length_prefixed(_TOTP_AAD_CONTEXT, self.client_id.bytes, self.user_id.bytes, key_id.encode())


@dataclass(frozen=True)
class Sealed:
    """What a credential row stores: the key id, the nonce, and ciphertext with its tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, nonce=<{len(self.nonce)} bytes>, " \
            f"ciphertext=<{len(self.ciphertext)} bytes>)"


class _Deriver:
    """Subkeys of one key by context (HKDF-SHA256, RFC 5869); never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def cipher(self, context: bytes) -> AES256GCM:
        return AES256GCM(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=context).derive(self._key))

    def __repr__(self) -> str:
        return "_Deriver(key='********')"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key cannot be pickled")


class Keyring:
    """One primary key that encrypts and any number of retired keys that still decrypt."""

    __slots__ = ("_ciphers", "_derivers", "primary_key_id", "retired_key_ids")

    def __init__(self, primary: bytes, retired: Sequence[bytes] = ()) -> None:
        self.primary_key_id = key_id(primary)
        self._ciphers: dict[str, AES256GCM] = {self.primary_key_id: AES256GCM(primary)}
        self._derivers: dict[str, _Deriver] = {self.primary_key_id: _Deriver(primary)}
        retired_ids: list[str] = []
        for key in retired:
            kid = key_id(key)
            if kid not in self._ciphers:
                self._ciphers[kid] = AES256GCM(key)
                self._derivers[kid] = _Deriver(key)
                retired_ids.append(kid)
        self.retired_key_ids: tuple[str, ...] = tuple(retired_ids)

    @classmethod
    def from_config(cls, config: AgentConfig | CredentialKeysConfig) -> Keyring:
        """The keyring of a validated agent configuration."""
        primary = parse_key(PRIMARY_VARIABLE, config.credential_encryption_key.reveal())
        retired_value = config.credential_encryption_keys_retired
        retired = parse_key_list(RETIRED_VARIABLE, retired_value.reveal() if retired_value else None)
        return cls(primary, retired)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def _cipher(self, kid: str, binding: Binding) -> AES256GCM:
        context = binding.key_context()
        return self._ciphers[kid] if context is None else self._derivers[kid].cipher(context)

    def encrypt(self, plaintext: bytes, binding: Binding) -> Sealed:
        """Seal under the primary key (or its subkey for the binding) with a fresh random nonce."""
        nonce = new_nonce()
        cipher = self._cipher(self.primary_key_id, binding)
        sealed = cipher.seal(nonce, plaintext, binding.associated_data(self.primary_key_id))
        return Sealed(self.primary_key_id, nonce, sealed)

    def decrypt(self, sealed: Sealed, binding: Binding) -> bytes:
        """Open with exactly the key the row names: no trial decryption under other keys."""
        if sealed.key_id not in self._ciphers:
            raise UnknownKey(sealed.key_id)
        cipher = self._cipher(sealed.key_id, binding)
        return cipher.open(sealed.nonce, sealed.ciphertext, binding.associated_data(sealed.key_id))

    def describe(self) -> str:
        """The key ids held, for operator messages; never a key."""
        parts = [f"{self.primary_key_id} (primary)"]
        parts += [f"{kid} (retired)" for kid in self.retired_key_ids]
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"Keyring({self.describe()})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a keyring cannot be pickled")
