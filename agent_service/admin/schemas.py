"""What the operator may ask the admin reports: a period of whole days (UTC), as ISO dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Days a period may name: before Hapex there is nothing to report, and past the calendar's last
# day a period's end (the next midnight) does not exist.
EARLIEST = date(2000, 1, 1)
LATEST = date.max - timedelta(days=1)


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

    since = fields.Date(load_default=None, validate=validate.Range(min=EARLIEST, max=LATEST), metadata={
        "description": "First day (UTC) of the period, ISO date; by default 29 days before until."})
    until = fields.Date(load_default=None, validate=validate.Range(min=EARLIEST, max=LATEST), metadata={
        "description": f"Last day (UTC) of the period, ISO date, at most {MAX_DAYS} days after since; by default "
                       "today."})

    def __init__(self, *, today: date | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.today = today

    @post_load
    def _period(self, data: dict[str, Any], **kwargs: Any) -> Period:
        until = data["until"] or self.today or datetime.now(UTC).date()
        since = data["since"] or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise ValidationError({"since": ["Must be on or before until."]})
        if (until - since).days + 1 > MAX_DAYS:
            raise ValidationError({"since": [f"The period may span at most {MAX_DAYS} days."]})
        return Period(since, until)


def load_period(arguments: dict[str, Any], *, today: date | None = None) -> Period:
    """A Period from query arguments; ValidationError with per-field messages if they are bad."""
    return PeriodSchema(today=today).load(arguments)  # type: ignore[no-any-return]  # marshmallow's load() returns Any


class NoArgumentsSchema(Schema):
    """A report that takes no query arguments."""

    class Meta:
        unknown = RAISE


# --- what the reports answer: ids, names, counts, costs and error classes, never content ----


class OverviewSchema(Schema):
    clients = fields.Integer(required=True)
    connections_active = fields.Integer(required=True)
    connections_needs_reauth = fields.Integer(required=True)
    runs_last_day = fields.Integer(required=True)
    runs_failed_last_day = fields.Integer(required=True)
    jobs_waiting = fields.Integer(required=True)


class ClientFiguresSchema(Schema):
    client_id = fields.UUID(required=True)
    name = fields.String(required=True)
    runs = fields.Integer(required=True)
    failed_runs = fields.Integer(required=True)
    failure_rate = fields.Float(required=True, allow_none=True)
    cost_microusd = fields.Integer(required=True)


class ClientReportSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    clients = fields.List(fields.Nested(ClientFiguresSchema), required=True)


class ReauthConnectionSchema(Schema):
    client_id = fields.UUID(required=True)
    client_name = fields.String(required=True)
    connection_id = fields.UUID(required=True)
    provider = fields.String(required=True)
    status_reason = fields.String(required=True, allow_none=True)
    since = fields.AwareDateTime(required=True)
    health_failures = fields.Integer(required=True)
    health_error_class = fields.String(required=True, allow_none=True)


class ReauthReportSchema(Schema):
    connections = fields.List(fields.Nested(ReauthConnectionSchema), required=True)


class FailingAutomationSchema(Schema):
    client_id = fields.UUID(required=True)
    client_name = fields.String(required=True)
    automation_id = fields.UUID(required=True)
    status = fields.String(required=True)
    runs = fields.Integer(required=True)
    failed_runs = fields.Integer(required=True)
    last_failed_at = fields.AwareDateTime(required=True, allow_none=True)
    last_error_class = fields.String(required=True, allow_none=True)


class FailingReportSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    automations = fields.List(fields.Nested(FailingAutomationSchema), required=True)


class QueueDepthSchema(Schema):
    queue_name = fields.String(required=True)
    status = fields.String(required=True)
    jobs = fields.Integer(required=True)
    oldest_waiting_since = fields.AwareDateTime(required=True, allow_none=True)


class WorkerSchema(Schema):
    worker_id = fields.Integer(required=True)
    last_heartbeat = fields.AwareDateTime(required=True)
    seconds_since_heartbeat = fields.Integer(required=True)
    jobs_running = fields.Integer(required=True)
    stale = fields.Boolean(required=True)


class QueueReportSchema(Schema):
    jobs = fields.List(fields.Nested(QueueDepthSchema), required=True)
    workers = fields.List(fields.Nested(WorkerSchema), required=True)
