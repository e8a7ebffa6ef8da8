"""The door's size limit holds for a body without a Content-Length (chunked), not only for one that declares it."""

from __future__ import annotations

import io

from flask import Flask, jsonify, request

from shared import request_input
from shared.errors import register_json_errors

LIMIT = 1024


def door_app() -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    request_input.install(app)
    register_json_errors(app)

    @app.post("/echo")
    def echo():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True)
        return jsonify(seen=None if body is None else len(body["a"]))

    @app.post("/form")
    def form():  # type: ignore[no-untyped-def]
        return jsonify(seen=len(request.form.get("a", "")))

    return app


def chunked(client, path: str, body: bytes, content_type: str):  # type: ignore[no-untyped-def]
    return client.post(path, input_stream=io.BytesIO(body), content_type=content_type,
                       environ_overrides={"wsgi.input_terminated": True}, headers={"Transfer-Encoding": "chunked"})


def test_a_chunked_json_body_over_the_limit_is_413_not_read_as_its_truncated_first_part():
    """Werkzeug cuts a body without Content-Length at MAX_CONTENT_LENGTH silently: the view read the first
    kilobyte as the whole body (valid JSON followed by anything at all was accepted as that JSON)."""
    client = door_app().test_client()
    prefix = b'{"a": "' + b"x" * 100 + b'"}'
    oversized = prefix + b" " * (LIMIT - len(prefix)) + b"trailing data past the limit"
    answer = chunked(client, "/echo", oversized, "application/json")
    assert answer.status_code == 413
    assert chunked(client, "/echo", prefix, "application/json").json == {"seen": 100}


def test_a_chunked_form_body_over_the_limit_is_413():
    client = door_app().test_client()
    answer = chunked(client, "/form", b"a=" + b"y" * (2 * LIMIT), "application/x-www-form-urlencoded")
    assert answer.status_code == 413
    assert chunked(client, "/form", b"a=yy", "application/x-www-form-urlencoded").json == {"seen": 2}
