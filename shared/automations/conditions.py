"""The "continue only if" step's comparisons: text, numbers and dates, with no logic beyond one comparison.

Both sides are text once their fields are filled in (shared.automations.text_fields); here they
are read as the chosen type and compared. A side that cannot be read as that type makes the
comparison fail (the run stops there), never guessed at: "about 500" is not greater than 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime

# One number, allowing a currency sign or code around it and thousands separators: €1,250.50, 1 250, -3.
_NUMBER = re.compile(r"^[^\d+-]{0,4}\s*([+-]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|[+-]?\d+(?:\.\d+)?)\s*[^\d]{0,4}$")


@dataclass(frozen=True)
class Outcome:
    """Whether the condition holds, and whether a side could not be read as the chosen type."""

    passed: bool
    unreadable: bool = False


def as_number(text: str) -> Decimal | None:
    match = _NUMBER.match(text.strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1).replace(",", "").replace(" ", ""))
    except InvalidOperation:
        return None


def as_date(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC), or an email Date header."""
    stripped = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
            return datetime.combine(date.fromisoformat(stripped), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(stripped)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _is_date_only(text: str) -> bool:
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()) is not None


def evaluate(value: str, operator: str, compare_to: str = "", compare_as: str = "text") -> Outcome:
    """The comparison `value <operator> compare_to`, read as text, numbers or dates."""
    if operator == "is_empty":
        return Outcome(value.strip() == "")
    if operator == "is_not_empty":
        return Outcome(value.strip() != "")
    if compare_as == "text":
        left, right = value.strip().casefold(), compare_to.strip().casefold()
        if operator in ("contains", "not_contains"):
            return Outcome((right in left) == (operator == "contains"))
        return _compare(left, right, operator)
    if operator in ("contains", "not_contains"):
        return Outcome(False, unreadable=True)  # only text contains text
    if compare_as == "number":
        a, b = as_number(value), as_number(compare_to)
        if a is None or b is None:
            return Outcome(False, unreadable=True)
        return _compare(a, b, operator)
    da, db = as_date(value), as_date(compare_to)
    if da is None or db is None:
        return Outcome(False, unreadable=True)
    if _is_date_only(value) or _is_date_only(compare_to):  # a day compares with a day
        return _compare(da.astimezone(UTC).date(), db.astimezone(UTC).date(), operator)
    return _compare(da, db, operator)


def _compare(a: object, b: object, operator: str) -> Outcome:
    if operator == "equals":
        return Outcome(a == b)
    if operator == "not_equals":
        return Outcome(a != b)
    if operator == "greater_than":
        return Outcome(a > b)  # type: ignore[operator]  # both sides are of one comparable type
    if operator == "less_than":
        return Outcome(a < b)  # type: ignore[operator]  # both sides are of one comparable type
    raise ValueError(f"unknown operator {operator!r}")
