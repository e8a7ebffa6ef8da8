"""Parsing CREDENTIAL_ENCRYPTION_KEY(S_RETIRED) into raw AES-256 keys and their key ids."""

from __future__ import annotations

import base64
import binascii
import hashlib

from shared.config import ConfigError

KEY_BYTES = 32


def parse_key(variable: str, value: str) -> bytes:
    """32 random bytes, base64-encoded; anything else is refused naming the variable."""
    text = value.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(text.encode())
        except (binascii.Error, ValueError):
            raise ConfigError(variable, "is not valid base64") from None
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text.rstrip("="):
            raise ConfigError(variable, "is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(variable, f"must decode to {KEY_BYTES} bytes (got {len(raw)})")
    if len(set(raw)) == 1:
        raise ConfigError(variable, "must be random bytes, not one byte repeated")
    return raw


def parse_key_list(variable: str, value: str | None) -> list[bytes]:
    """A comma-separated list of keys, as CREDENTIAL_ENCRYPTION_KEYS_RETIRED holds."""
    if not value:
        return []
    return [parse_key(variable, part) for part in value.split(",") if part.strip()]


def key_id(key: bytes) -> str:
    """A fingerprint that names a key without revealing it."""
    return "k1:" + hashlib.sha256(b"hapex-credential-key-id\x00" + key).hexdigest()[:16]
