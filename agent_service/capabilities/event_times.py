"""Time windows and instants as calendar APIs want them, shared by Google Calendar and Outlook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent_service.capabilities.base import StepFailed


def window(days_ahead: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """From now over the next `days_ahead` days; 0 means the rest of today (UTC)."""
    now = now or datetime.now(UTC)
    if days_ahead:
        return now, now + timedelta(days=days_ahead)
    return now, datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def aware(value: Any, name: str) -> datetime:
    """A loaded AwareDateTime, or its ISO string when the input was not loaded."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise StepFailed(f"The event {name} is not a date and time.") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise StepFailed(f"The event {name} needs a time zone.")
    return value
