"""How many encryptions each key has made: AES-GCM with random 96-bit nonces allows 2^32."""

from __future__ import annotations

import logging

from agent_service.vault import repository
from agent_service.vault.keyring import Keyring
from shared.db.pool import Connection
from shared.errors import HapexError

logger = logging.getLogger(__name__)

# NIST SP 800-38D 8.3: with random 96-bit nonces, at most 2^32 encryptions per key.
RANDOM_NONCE_LIMIT = 2**32
# Warn from a quarter of the limit, and again every 2^24 encryptions after that.
USAGE_WARNING_AT = 2**30
USAGE_WARNING_EVERY = 2**24


class KeyExhausted(HapexError):
    name = "key_exhausted"
    message = "The primary credential key has reached its encryption limit; rotate to a new key."


def reserve_encryptions(conn: Connection, keyring: Keyring, count: int) -> int:
    """Count encryptions under the primary key before making them; refuse past the limit."""
    total = repository.count_encryptions(conn, key_id=keyring.primary_key_id, count=count)
    if total > RANDOM_NONCE_LIMIT:
        raise KeyExhausted()
    previous = total - count
    if total >= USAGE_WARNING_AT and (
        previous < USAGE_WARNING_AT or previous // USAGE_WARNING_EVERY != total // USAGE_WARNING_EVERY
    ):
        warn_about_usage(keyring.primary_key_id, total)
    return total


def warn_about_usage(key_id: str, total: int) -> None:
    logger.warning(
        "credential key approaching its random-nonce limit of 2^32 encryptions; "
        "make a new primary key and run `hapex credentials rotate`",
        extra={"key_id": key_id, "count": total},
    )


