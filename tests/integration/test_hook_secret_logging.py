"""A webhook's secret URL never reaches the access log, whatever method or failure."""

from __future__ import annotations

import logging

import pytest

SECRET = "S3CRETwebhookVALUEcanary0123456789abcdefghij"


@pytest.mark.parametrize("method", ["POST", "GET", "TRACE", "PROPFIND", "OPTIONS", "HEAD"])
def test_no_method_puts_the_webhook_secret_in_the_access_log(intake_app, caplog, method):
    with caplog.at_level(logging.INFO, logger="hapex.access"):
        intake_app.test_client().open(f"/hooks/{SECRET}", method=method, base_url="https://intake.test")
    paths = [getattr(r, "path", "") for r in caplog.records if r.name == "hapex.access"]
    assert paths == ["/hooks/<secret>"]
    assert SECRET not in caplog.text
