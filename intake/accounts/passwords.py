"""Password hashing with argon2id; the same work is done whether or not the account exists."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type, extract_parameters, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id is 19 MiB and two passes; RFC 9106's low-memory profile
# (64 MiB, three passes, four lanes) is above it on every axis.
OWASP_MINIMUM_MEMORY_KIB = 19 * 1024
OWASP_MINIMUM_TIME_COST = 2
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


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
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None

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
