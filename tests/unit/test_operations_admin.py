"""hapex admin without a database, and the reports' default period."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from marshmallow import ValidationError

from agent_service.admin.terminal import run_admin_command
from agent_service.config import ReportsConfig
from hapex.cli import main


def test_hapex_admin_without_a_database_says_so_without_the_password(capsys):
    dsn = "postgresql://hapex_agent:pw-canary-5678@127.0.0.1:1/hapex?connect_timeout=1"
    code = run_admin_command(__import__("sys").stdout, __import__("sys").stderr, "queue",
                             config=ReportsConfig.from_env({"AGENT_DATABASE_URL": dsn}))
    captured = capsys.readouterr()
    assert code == 1
    assert "AGENT_DATABASE_URL" in captured.err and "pw-canary-5678" not in captured.err + captured.out


def test_hapex_admin_without_agent_database_url_names_the_variable(capsys, monkeypatch):
    monkeypatch.delenv("AGENT_DATABASE_URL", raising=False)
    assert main(["admin", "queue"]) == 2
    assert "AGENT_DATABASE_URL must be set" in capsys.readouterr().err


def test_the_period_defaults_are_whole_utc_days():
    from agent_service.admin.schemas import load_period

    period_ = load_period({"since": "2026-03-01", "until": "2026-03-01"}, today=date(2026, 3, 5))
    assert (period_.start, period_.end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    assert load_period({}, today=date(2026, 3, 30)).since == date(2026, 3, 1)


@pytest.mark.parametrize(("arguments", "field"), [
    ({"until": "0001-01-01"}, "until"),
    ({"until": "9999-12-31"}, "until"),
    ({"since": "0001-01-01", "until": "0001-01-01"}, "since"),
    ({"since": "9999-12-31", "until": "9999-12-31"}, "until"),
])
def test_a_period_at_the_ends_of_the_calendar_is_refused_by_field_not_overflowed(arguments, field):
    from agent_service.admin.schemas import load_period

    with pytest.raises(ValidationError) as refused:
        period_ = load_period(arguments, today=date(2026, 3, 5))
        (period_.start, period_.end)
    assert field in refused.value.messages
