"""Logs a person reads on a terminal, JSON lines elsewhere: the same allowlisted, redacted fields."""

from __future__ import annotations

import io
import json
import logging

from shared.structured_logging import JSONFormatter, TerminalFormatter, formatter_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_readable_lines_and_anything_else_json():
    assert isinstance(formatter_for("intake", Terminal()), TerminalFormatter)
    chosen = formatter_for("intake", io.StringIO())
    assert isinstance(chosen, JSONFormatter) and not isinstance(chosen, TerminalFormatter)


def test_a_readable_line_carries_the_same_fields_as_the_json_line_and_no_more():
    record = logging.LogRecord("hapex.access", logging.INFO, __file__, 1, "request", None, None)
    record.status_code = 200
    record.password = "hunter2-not-allowlisted"
    line = TerminalFormatter("intake").format(record)
    as_json = json.loads(JSONFormatter("intake").format(record))
    assert line.split(" ", 1)[1].startswith("info    intake: request")
    assert "status_code=200" in line and "hapex.access" in line
    assert "hunter2" not in line and "password" not in as_json


def test_log_format_can_be_set_whatever_the_output_is():
    from shared.config import ConfigError, Environment, log_format

    assert isinstance(formatter_for("agent", io.StringIO(), "text"), TerminalFormatter)
    assert not isinstance(formatter_for("agent", Terminal(), "json"), TerminalFormatter)
    assert log_format(Environment({"LOG_FORMAT": "TEXT"})) == "text"
    assert log_format(Environment({})) == "auto"
    try:
        log_format(Environment({"LOG_FORMAT": "xml"}))
    except ConfigError as refused:
        assert refused.variable == "LOG_FORMAT"
    else:
        raise AssertionError("LOG_FORMAT=xml was accepted")
