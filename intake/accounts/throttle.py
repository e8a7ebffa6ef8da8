"""Login throttling per account and per network address, kept in PostgreSQL.

Buckets are keyed hashes (HMAC-SHA-256 under the session secret) of the email or the
address, so the table holds no customer data and every gunicorn worker and replica sees
the same counts. An unknown email has a bucket like any other, so a lock-out says
nothing about whether an account exists.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from intake.accounts import repository
from shared.db import Database

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Buckets:
    """The two buckets one attempt counts against; account is None when no email was given."""

    account: bytes | None
    address: bytes

    def all(self) -> list[bytes]:
        return [b for b in (self.account, self.address) if b is not None]


class LoginThrottle:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._key = key

    def _bucket(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()

    def buckets(self, *, email: str | None, address: str | None, purpose: str = "login") -> Buckets:
        """Login's buckets, or another purpose's (a reset request, a resent email) counted apart from them."""
        prefix = "" if purpose == "login" else purpose + ":"
        account = self._bucket(prefix + "account", email.strip().lower()) if email else None
        return Buckets(account=account, address=self._bucket(prefix + "address", address_key(address)))

    def is_locked(self, buckets: Buckets) -> bool:
        with self._db.transaction() as conn:
            return repository.throttle_locked(conn, buckets=buckets.all())

    def record_failure(self, buckets: Buckets, *, account: bool = True) -> None:
        """Count a failed attempt; `account=False` counts it against the address alone."""
        with self._db.transaction() as conn:
            if account and buckets.account is not None:
                repository.throttle_record_failure(
                    conn, bucket=buckets.account, limit=ACCOUNT_LIMIT, window=WINDOW, lockout=LOCKOUT
                )
            repository.throttle_record_failure(
                conn, bucket=buckets.address, limit=ADDRESS_LIMIT, window=WINDOW, lockout=LOCKOUT
            )
            repository.throttle_forget_stale(conn)

    def begin_attempt(self, buckets: Buckets) -> bool:
        """Count a password check before it runs; False when a bucket is locked or full.

        Counting first, under the bucket's row lock, means a burst of parallel guesses
        cannot all be checked before the first failure is recorded.
        """
        with self._db.transaction() as conn:
            allowed = True
            if buckets.account is not None:
                allowed &= repository.throttle_attempt(
                    conn, bucket=buckets.account, limit=ACCOUNT_LIMIT, window=WINDOW, lockout=LOCKOUT
                )
            allowed &= repository.throttle_attempt(
                conn, bucket=buckets.address, limit=ADDRESS_LIMIT, window=WINDOW, lockout=LOCKOUT
            )
            repository.throttle_forget_stale(conn)
        return allowed

    def record_success(self, buckets: Buckets) -> None:
        """The account's owner got in: forget its failures, and take this attempt off the address."""
        if buckets.account is None:
            return
        with self._db.transaction() as conn:
            repository.throttle_clear(conn, bucket=buckets.account)
            repository.throttle_undo_attempt(conn, bucket=buckets.address)


def address_key(address: str | None) -> str:
    """An IPv4 address as is; an IPv6 address by its /64, which one host usually holds whole."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
