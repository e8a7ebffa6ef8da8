"""Password hashing with argon2id; the same work is done whether or not the account exists.

The agent verifies (only its role may read a stored hash: docs/client-proof.md); the intake hashes a
password a person has just chosen (sign-up, a reset link).
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher, Type, extract_parameters, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id is 19 MiB and two passes; RFC 9106's low-memory profile
# (64 MiB, three passes, four lanes) is above it on every axis.
OWASP_MINIMUM_MEMORY_KIB = 19 * 1024
OWASP_MINIMUM_TIME_COST = 2
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
PASSWORD_HASH_PROFILES = ("owasp", "test")
# A session's secret (the cookie's value, and the client's proof): 256 random bits, drawn by the agent.
SESSION_SECRET_BYTES = 32
# What an invited user's password_hash holds until they choose one through their invitation's link:
# no password matches it, and checking one against it costs what any check costs.
NO_PASSWORD_YET = "!no password yet"  # noqa: S105 - a marker, not a password


class Passwords:
    """Hashes and verifies passwords; verify_absent spends the same effort on no hash at all."""

    def __init__(self, profile: str) -> None:
        if profile == "owasp":
            self._hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
        elif profile == "test":
            self._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
        else:
            raise ValueError(f"unknown password hash profile {profile!r}")
        if profile == "owasp" and (
            self._hasher.memory_cost < OWASP_MINIMUM_MEMORY_KIB
            or self._hasher.time_cost < OWASP_MINIMUM_TIME_COST
        ):
            raise RuntimeError("argon2id parameters below the OWASP minimum")
        # Verified against when an email is unknown, so that the answer takes as long.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True only if the password matches; a missing hash still costs one verification."""
        usable = password_hash if password_hash is not None and password_hash.startswith("$argon2") else None
        try:
            matched = self._hasher.verify(usable or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and usable is not None

    def needs_upgrade(self, password_hash: str) -> bool:
        """A stored hash made with weaker settings than the current ones."""
        try:
            stored = extract_parameters(password_hash)
        except InvalidHashError:
            return True
        return (
            stored.type is not Type.ID
            or stored.memory_cost < self._hasher.memory_cost
            or stored.time_cost < self._hasher.time_cost
        )

    @property
    def memory_cost_kib(self) -> int:
        return self._hasher.memory_cost

    @property
    def time_cost(self) -> int:
        return self._hasher.time_cost

    @property
    def parallelism(self) -> int:
        return self._hasher.parallelism


def hash_recovery_code(code: str) -> bytes:
    """A recovery code as it is kept (80 random bits: SHA-256 is enough): upper case, without dashes."""
    return hashlib.sha256(code.strip().upper().replace("-", "").encode("ascii", "replace")).digest()
