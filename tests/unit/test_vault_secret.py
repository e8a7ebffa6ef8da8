"""A secret's plaintext never leaks through repr, str, formatting, logs or JSON."""

from __future__ import annotations

import io
import json
import logging
import pickle
from dataclasses import dataclass

import pytest
from flask import Flask, jsonify

from agent_service.vault.service import SecretExpired, StepSecret
from shared.secret import Secret
from shared.structured_logging import JSONFormatter

CANARY = "ya29.canary-access-token-5b1e9c"


@pytest.fixture(params=[Secret, StepSecret])
def secret(request) -> Secret:
    return request.param(CANARY)


def test_repr_str_and_formatting_are_masked(secret):
    renderings = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>40}",
                  "%s" % secret, "{}".format(secret), repr([secret]), repr({"token": secret})]  # noqa: UP031, UP032
    for text in renderings:
        assert CANARY not in text
        assert "********" in text


def test_a_dataclass_holding_a_secret_prints_it_masked(secret):
    @dataclass
    class Holder:
        token: Secret

    assert CANARY not in repr(Holder(secret))


def test_json_refuses_a_secret(secret):
    with pytest.raises(TypeError):
        json.dumps({"token": secret})
    with pytest.raises(TypeError):
        json.dumps([secret])


def test_flask_json_refuses_a_secret(secret):
    app = Flask(__name__)
    with app.app_context(), pytest.raises(TypeError):
        jsonify(token=secret)


def test_a_secret_cannot_be_pickled(secret):
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_a_logged_secret_appears_masked(secret):
    stream = io.StringIO()
    logger = logging.getLogger("tests.vault.secret")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter("test"))
    logger.addHandler(handler)
    try:
        logger.warning("calling provider with %s", secret, extra={"error": secret})
    finally:
        logger.removeHandler(handler)
    assert CANARY not in stream.getvalue()
    assert "********" in stream.getvalue()


def test_a_step_secret_reveals_until_its_step_ends_and_never_after():
    secret = StepSecret(CANARY)
    assert secret.reveal() == CANARY
    assert secret.matches(CANARY) and not secret.matches("other")
    secret.expire()
    for attempt in (secret.reveal, lambda: secret.matches(CANARY), secret.last4):
        with pytest.raises(SecretExpired):
            attempt()
    assert secret._value == ""  # the object no longer holds the plaintext
    assert CANARY not in repr(secret)


def test_a_step_secret_expiry_message_holds_nothing_of_the_value():
    secret = StepSecret(CANARY)
    secret.expire()
    with pytest.raises(SecretExpired) as raised:
        secret.reveal()
    assert CANARY not in str(raised.value) and "ended" in str(raised.value)
