"""The vault's cipher: AES-256-GCM seal and open of a 200-byte token, on one core.

Measures agent_service.vault's Keyring (a fresh nonce and the row-binding associated data
per encryption), in this one thread, without the database.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Any

from agent_service.vault import Keyring, Purpose
from agent_service.vault.keyring import CredentialBinding
from tests.bench.bench_stats import rounded

TOKEN_BYTES = 200


def _per_second(operation, seconds: float) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(200):
            operation()
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started), count


def run(seconds: float) -> dict[str, Any]:
    keyring = Keyring(os.urandom(32))
    binding = CredentialBinding(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), Purpose.ACCESS_TOKEN)
    token = secrets.token_urlsafe(TOKEN_BYTES)[:TOKEN_BYTES].encode()
    sealed = keyring.encrypt(token, binding)
    assert keyring.decrypt(sealed, binding) == token
    encrypt_rate, encrypted = _per_second(lambda: keyring.encrypt(token, binding), seconds)
    decrypt_rate, decrypted = _per_second(lambda: keyring.decrypt(sealed, binding), seconds)
    return {
        "token_bytes": TOKEN_BYTES,
        "encrypt_per_s": rounded(encrypt_rate, 0),
        "decrypt_per_s": rounded(decrypt_rate, 0),
        "encrypt_us": rounded(1e6 / encrypt_rate, 2),
        "decrypt_us": rounded(1e6 / decrypt_rate, 2),
        "operations": encrypted + decrypted,
    }
