"""gunicorn's logger for both services: it never writes a request line, a path or a header.

gunicorn logs what it read from a client in a few places: its default pre_request hook
("POST /hooks/<secret>" at DEBUG), "Error handling request <method> <uri>" (the full URI,
query string included) and "Invalid request from ip=...: <the offending line or header>".
A webhook's URL is its secret and a header may carry a bearer token, so this logger keeps the
kind of failure and drops what the client sent; the app's access log (shared.access_log) is the
one place a request is logged, with its path masked. The JSON formatter's redactor still runs
behind this, for whatever else a message holds.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_INVALID_REQUEST = re.compile(r"^Invalid request from ip=(\S*?): (.*)$", re.DOTALL)
# The kind of failure: what gunicorn's message says before it quotes what it read.
_KIND = re.compile(r"[^:'\"(\[]*")
_ERROR_HANDLING = "Error handling request"
WITHHELD = "(what the client sent is not logged)"


def masked(message: str) -> str:
    """The message without the request line, URI or header text a client sent."""
    invalid = _INVALID_REQUEST.match(message)
    if invalid:
        kind = _KIND.match(invalid.group(2))
        described = kind.group(0).strip() if kind else ""
        return f"Invalid request from ip={invalid.group(1)}: {described or 'unreadable'} {WITHHELD}"
    if message.startswith(_ERROR_HANDLING):
        return f"{_ERROR_HANDLING} {WITHHELD}"
    return message


def _formatted(msg: str, args: tuple[Any, ...]) -> str:
    text = str(msg)
    if args:
        try:
            return text % args
        except (TypeError, ValueError):
            return text
    return text


class HapexGunicornLogger(Logger):
    """gunicorn.glogging.Logger that masks request lines and writes no access line of its own."""

    def _masked_call(self, level: str, msg: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        getattr(self.error_log, level)(masked(_formatted(msg, args)), **kwargs)

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("critical", msg, args, kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("error", msg, args, kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("warning", msg, args, kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("info", msg, args, kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("debug", msg, args, kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._masked_call("exception", msg, args, kwargs)

    def log(self, lvl: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        super().log(lvl, masked(_formatted(msg, args)), **kwargs)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """The apps log each request themselves, with secret paths masked and no query string."""
