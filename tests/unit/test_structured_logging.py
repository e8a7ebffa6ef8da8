"""Logs hold allowlisted fields only; token-shaped values and exception text stay out."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared.secret import Secret
from shared.structured_logging import JSONFormatter, clamp_noisy_loggers, configure_logging


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("test", "DEBUG", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_only_allowlisted_extra_fields_are_written(log_stream):
    logging.getLogger("hapex.test").info(
        "step finished", extra={"run_id": "r1", "email_body": "Dear customer", "status": "succeeded"}
    )
    (entry,) = lines(log_stream)
    assert entry["run_id"] == "r1" and entry["status"] == "succeeded"
    assert "email_body" not in entry
    assert "Dear customer" not in log_stream.getvalue()


@pytest.mark.parametrize(
    "leak",
    [
        "Bearer ya29.a0AfH6SMBx-canary-access-token",
        "refresh_token=1//0gcanaryRefreshToken",
        "sk-ant-api03-canaryCanaryCanary",
        "xoxb-1234-5678-canarycanary",
        '{"access_token": "canary-token-value"}',
        "https://oauth2.example/token?code=4/canary-code&state=abc",
        "{'Hapex-Client-Proof': 'session canaryCanaryCanaryCanaryCanaryCanary_-x'}",
        "webhook canaryCanaryCanaryCanaryCanaryCanary_-x",
    ],
)
def test_token_shaped_values_in_messages_are_redacted(log_stream, leak):
    logging.getLogger("hapex.test").warning("provider said %s", leak)
    output = log_stream.getvalue()
    assert "canary" not in output.lower()
    assert "[redacted]" in output


def test_a_secret_argument_is_masked(log_stream):
    logging.getLogger("hapex.test").info("using %s", Secret("canary-secret-value"))
    assert "canary-secret-value" not in log_stream.getvalue()


def test_an_exception_is_logged_as_its_class_and_frames_never_its_message(log_stream):
    try:
        raise ValueError("customer email body: canary-content")
    except ValueError:
        logging.getLogger("hapex.test").exception("step failed")
    (entry,) = lines(log_stream)
    assert entry["error_class"] == "ValueError"
    assert entry["stack"]
    assert "canary-content" not in log_stream.getvalue()


def test_oauth_libraries_never_log_below_info():
    for name in ("requests_oauthlib", "oauthlib"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    clamp_noisy_loggers()
    for name in ("requests_oauthlib", "oauthlib"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO


def test_each_line_is_one_json_object():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "multi\nline %s", ("arg",), None)
    text = JSONFormatter("svc").format(record)
    assert "\n" not in text
    assert json.loads(text)["message"] == "multi\nline arg"


def test_paths_under_a_secret_prefix_are_masked_and_others_kept():
    from shared.access_log import logged_path

    assert logged_path("/hooks/S3CRETwebhookVALUE", ("/hooks/",)) == "/hooks/<secret>"
    assert logged_path("/hooks/", ("/hooks/",)) == "/hooks/<secret>"
    assert logged_path("/automations/123", ("/hooks/",)) == "/automations/123"
