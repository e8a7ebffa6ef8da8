"""The Secret type keeps its value out of reprs, f-strings, JSON and pickles."""

from __future__ import annotations

import json
import pickle

import pytest
from flask import Flask, jsonify

from shared.secret import Secret

CANARY = "canary-9f8e7d6c5b4a"


def test_repr_str_and_format_are_masked():
    secret = Secret(CANARY)
    for text in (repr(secret), str(secret), f"{secret}", "%s" % secret,  # noqa: UP031 - the old style must mask too
         f"{secret!r}", f"{[secret]}"):
        assert CANARY not in text


def test_json_serialisation_is_refused():
    with pytest.raises(TypeError):
        json.dumps({"token": Secret(CANARY)})


def test_flask_jsonify_refuses_it_too():
    app = Flask(__name__)
    with app.app_context(), pytest.raises(TypeError):
        jsonify(token=Secret(CANARY))


def test_pickling_is_refused():
    with pytest.raises(TypeError):
        pickle.dumps(Secret(CANARY))


def test_reveal_gives_the_value_and_matches_compares_it():
    secret = Secret(CANARY)
    assert secret.reveal() == CANARY
    assert secret.matches(CANARY) and not secret.matches(CANARY + "x") and not secret.matches(None)


def test_last4_only_for_values_long_enough_to_hide_the_rest():
    assert Secret("sk-live-abcdef1234").last4() == "1234"
    assert Secret("short").last4() == ""
