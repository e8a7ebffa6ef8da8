"""A value that must never be printed, logged or serialised by accident."""

from __future__ import annotations

import hmac
from typing import Any, NoReturn


class Secret:
    """Wraps a secret string or bytes; repr and str are masked, JSON refuses it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str | bytes):
            raise TypeError("Secret holds str or bytes")
        self._value = value

    def reveal(self) -> Any:
        """The plaintext; call it only where the value is about to be used."""
        return self._value

    def last4(self) -> str:
        """The last four characters, for a hint the owner may see."""
        value = self._value if isinstance(self._value, str) else self._value.hex()
        return value[-4:] if len(value) >= 8 else ""

    def matches(self, candidate: str | bytes | None) -> bool:
        """Constant-time comparison with a candidate value."""
        if candidate is None:
            return False
        mine = self._value.encode() if isinstance(self._value, str) else self._value
        theirs = candidate.encode() if isinstance(candidate, str) else candidate
        return hmac.compare_digest(mine, theirs)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self.matches(other._value)

    __hash__ = None  # type: ignore[assignment]  # how Python marks a class unhashable

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Secret cannot be serialised")
