"""The AES-256-GCM core: one key size, one nonce size, one tag size, nothing to misconfigure.

Everything else in the vault encrypts through `AES256GCM`; the Wycheproof vectors run
through it too (tests/unit/test_vault_wycheproof.py).
"""

from __future__ import annotations

import os
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import HapexError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class UnsupportedParameters(HapexError, ValueError):
    name = "unsupported_parameters"
    message = "Only 32-byte AES-256 keys and 12-byte (96-bit) nonces are accepted."


class AuthenticationFailed(HapexError):
    name = "authentication_failed"
    message = "The ciphertext does not authenticate under this key, nonce and associated data."


def new_nonce() -> bytes:
    """A fresh random 96-bit nonce from the operating system's CSPRNG, never a counter."""
    return os.urandom(NONCE_BYTES)


class AES256GCM:
    """AES-256-GCM with 96-bit nonces and 128-bit tags over cryptography's AESGCM."""

    __slots__ = ("_aesgcm",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise UnsupportedParameters("AES-256-GCM needs a 32-byte key.")
        self._aesgcm = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """Ciphertext followed by its 16-byte tag."""
        _check_nonce(nonce)
        return self._aesgcm.encrypt(nonce, plaintext, associated_data)

    def open(self, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or AuthenticationFailed if anything was altered."""
        _check_nonce(nonce)
        if len(sealed) < TAG_BYTES:
            raise AuthenticationFailed()
        try:
            return self._aesgcm.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            raise AuthenticationFailed() from None

    def __repr__(self) -> str:
        return "AES256GCM(key='********')"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key cannot be pickled")


def _check_nonce(nonce: bytes) -> None:
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise UnsupportedParameters("AES-256-GCM here takes a 12-byte nonce.")
