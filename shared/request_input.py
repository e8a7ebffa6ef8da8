"""Where a request's input enters either service: what no view could store is refused whole, at the door.

PostgreSQL cannot store a NUL character in text (UntranslatableCharacter), psycopg cannot encode
an unpaired surrogate, a file part where a form expects text reaches WTForms as a FileStorage, JSON
nested a few thousand deep exhausts the parser, a number beyond 32 bits in the query string
overflows an integer column. Each used to be a 500 from deep inside a view, sometimes after part
of the request's work; `install` refuses them before any other before_request (session, CSRF) or
view runs, with the service's own 4xx (a form page or the JSON error shape). `load_json` is the one
way JSON text from input is read (request bodies here, a form's JSON fields in the intake), so a
body and a field get the same limits. A refused or oversized body is read to its end (up to
DRAIN_LIMIT) so that the client reads the 4xx instead of a connection reset mid-upload.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import HapexError

MAX_JSON_DEPTH = 32
INTEGER_LIMIT = 2**31 - 1
# A 413 answer reads the rest of a body up to this much, so the client sees the answer; a larger
# body has its connection closed instead.
DRAIN_LIMIT = 16 * 1024 * 1024
_INTEGER = re.compile(r"[+-]?\d+")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

View = TypeVar("View", bound=Callable[..., Any])


class InputRefused(HapexError):
    name = "bad_input"
    status = 400
    message = "The request holds input that cannot be accepted."


class UnstorableText(InputRefused):
    message = "Text may not contain NUL characters or unpaired surrogates."


class FilePartRefused(InputRefused):
    message = "This address accepts no file uploads: send text fields only."


class NumberOutOfRange(InputRefused):
    message = f"A number in the query string is out of range (at most {INTEGER_LIMIT})."


class JSONTooDeep(InputRefused):
    message = f"JSON may nest at most {MAX_JSON_DEPTH} levels deep."


class UnreadableJSON(ValueError):
    """JSON text that nests too deeply or holds text no column can store (a ValueError, as invalid JSON is)."""

    def __init__(self, refusal: type[InputRefused]) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text: no NUL, and valid UTF-8 once encoded."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_json(value: Any) -> None:
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not storable(item):
                raise UnreadableJSON(UnstorableText)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise UnreadableJSON(JSONTooDeep)
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)


def load_json(text: str | bytes) -> Any:
    """JSON from input: json.loads, refusing deep nesting and unstorable text as UnreadableJSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnreadableJSON(JSONTooDeep) from None
    _check_json(value)
    return value


def body_ignored(view: View) -> View:
    """Mark a view that never reads its body (the inbound webhook): the door does not parse it either."""
    view.hapex_body_ignored = True  # type: ignore[attr-defined]  # read back by _refuse_unusable_input
    return view


def _check_texts(texts: Iterable[str]) -> None:
    if not all(storable(text) for text in texts):
        raise UnstorableText()


def _bound_unsized_body(limit: int) -> None:
    """A body without a Content-Length (chunked) is read here, up to one byte past the limit: over it
    is 413, as a declared length is. Werkzeug would cut such a body at the limit without a word, so
    a view read its first MAX_CONTENT_LENGTH bytes as the whole body (a form losing its last fields,
    JSON followed by anything accepted as that JSON). What was read becomes the body, now sized."""
    environ = request.environ
    if "wsgi.input_terminated" not in environ:
        return  # the server does not end the stream: Werkzeug reads no body at all
    stream = environ["wsgi.input"]
    data = b""
    while len(data) <= limit:
        chunk = stream.read(min(65536, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise RequestEntityTooLarge()
    if data:
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))


def _refuse_unusable_input() -> None:
    args = request.args
    _check_texts(text for pair in args.items(multi=True) for text in pair)
    for value in args.values():
        digits = value.strip().lstrip("+-")
        if _INTEGER.fullmatch(value.strip()) and (len(digits) > 10 or int(digits) > INTEGER_LIMIT):
            raise NumberOutOfRange()
    _check_texts(value for value in (request.view_args or {}).values() if isinstance(value, str))
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    if limit is not None and request.content_length is None:
        _bound_unsized_body(limit)
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "hapex_body_ignored", False):
        return
    if request.mimetype in _FORM_TYPES:
        if request.files:
            raise FilePartRefused()
        _check_texts(text for pair in request.form.items(multi=True) for text in pair)
    elif request.is_json and request.get_data(cache=True):
        try:
            load_json(request.get_data(cache=True))
        except UnreadableJSON as unreadable:
            raise unreadable.refusal() from None
        except ValueError:
            pass  # not JSON at all: the view answers that in its own words


def _drain_refused_body(response: Response) -> Response:
    """Read what is left of a body answered 413 (or refused unread), so the client gets the answer."""
    if response.status_code == 413 or (response.status_code >= 400 and request.content_length):
        stream = request.environ.get("wsgi.input")
        remaining = min(request.content_length or DRAIN_LIMIT, DRAIN_LIMIT)
        try:
            while stream is not None and remaining > 0:
                chunk = stream.read(min(65536, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
        except (OSError, ValueError):
            pass  # the client went away: nothing is left to answer
    return response


def install(app: Flask) -> None:
    """Refuse unusable input before every other check of the app; call it before installing those."""
    app.before_request(_refuse_unusable_input)
    app.after_request(_drain_refused_body)
