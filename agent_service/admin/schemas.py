"""What the operator may ask the admin reports: a period of whole days (UTC), as ISO dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """From the start of `since` to the end of `until`, both inclusive, in UTC."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)

    def as_json(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


class PeriodSchema(Schema):
    """?since=YYYY-MM-DD&until=YYYY-MM-DD; by default the 30 days up to today."""

    class Meta:
        unknown = RAISE

    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)


def load_period(arguments: dict[str, Any], *, today: date | None = None) -> Period:
    """A Period from query arguments; ValidationError with per-field messages if they are bad."""
    data = PeriodSchema().load(arguments)
    until = data["until"] or today or datetime.now(UTC).date()
    since = data["since"] or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ValidationError({"since": ["Must be on or before until."]})
    if (until - since).days + 1 > MAX_DAYS:
        raise ValidationError({"since": [f"The period may span at most {MAX_DAYS} days."]})
    return Period(since, until)
