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
