"""What the sandbox holds: its grants and tokens, and a small business's sample data.

One process serves the sandbox, so the state lives in memory under one lock and is written
to .data/sandbox/state.json (mode 0600) after every change: a restarted `make run` keeps its
connections and shows what earlier runs did.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BUSINESS = "Crumb & Co Bakery"
# #accounts is where the gallery's starters post.
CHANNELS = {"C0SANDBOX1": "general", "C0SANDBOX2": "finance", "C0SANDBOX3": "accounts"}
SPREADSHEET_ID = "sandbox-sheet-0001"


@dataclass
class Grant:
    """One consent: a client, the scopes the person ticked, alive until revoked."""

    grant_id: str
    provider: str
    client_id: str
    scopes: list[str]
    created_at: float
    revoked: bool = False


@dataclass
class Token:
    value: str
    kind: str  # "access" or "refresh"
    grant_id: str
    expires_at: float | None
    revoked: bool = False


@dataclass
class Code:
    value: str
    grant_id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str
    code_challenge_method: str
    expires_at: float


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def sample_mailbox(now: float) -> list[dict[str, Any]]:
    """A few days of a bakery's mail: three invoices among ordinary messages, newest first."""
    day = 86_400
    mails = [
        ("m-0001", "Flour Mill Ltd <billing@flourmill.example>", "Invoice INV-2041 for November flour",
         "Hello,\n\nPlease find invoice INV-2041 for 40 sacks of flour.\nTotal due: EUR 1,240.00 by 15 December.\n"
         "\nThank you,\nFlour Mill Ltd", 0.2),
        ("m-0002", "Lena Ortiz <lena@example.net>", "Birthday cake for Saturday",
         "Hi! Could you make a chocolate cake for 12 people, ready Saturday at 10? Thanks, Lena", 0.5),
        ("m-0003", "Dairy Co-op <accounts@dairycoop.example>", "Your invoice 88-317 is ready",
         "Dear customer,\n\nInvoice 88-317: butter and cream, weeks 47-48.\nAmount: EUR 386.50, due in 30 days.\n",
         1.1),
        ("m-0004", "Packaging World <no-reply@packworld.example>", "Invoice PW-5520 (boxes and bags)",
         "Invoice PW-5520\n500 cake boxes, 2000 paper bags.\nTotal: EUR 412.80. Paid by direct debit on 1 Dec.",
         2.3),
        ("m-0005", "Town Market <events@townmarket.example>", "Christmas market stall confirmed",
         "Your stall B12 is confirmed for 19-21 December. Setup from 7:00.", 3.0),
    ]
    return [{"id": mid, "threadId": "t-" + mid[2:], "from": sender, "subject": subject, "body": body,
             "internalDate": str(int((now - age * day) * 1000)), "labelIds": ["INBOX", "UNREAD"]}
            for mid, sender, subject, body, age in mails]


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def sample_events(now: float) -> list[dict[str, Any]]:
    start = time.gmtime(now + 86_400)
    day = time.strftime("%Y-%m-%d", start)
    return [
        {"id": "ev0001", "summary": "Flour delivery", "start": {"dateTime": f"{day}T07:00:00Z"},
         "end": {"dateTime": f"{day}T07:30:00Z"}, "status": "confirmed", "created": rfc3339(now - 86_400)},
        {"id": "ev0002", "summary": "Call with Lena about the cake", "start": {"dateTime": f"{day}T15:00:00Z"},
         "end": {"dateTime": f"{day}T15:15:00Z"}, "status": "confirmed", "created": rfc3339(now - 86_400)},
    ]


@dataclass
class SandboxState:
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    mailbox: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    sheet: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    slack_messages: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    notion_blocks: list[dict[str, Any]] = field(default_factory=list)
    # Claude stand-in: prompt prefixes seen with cache_control, so a second call reads the cache.
    cached_prefixes: dict[str, int] = field(default_factory=dict)
    # What happened, for tests and the index page: counts by event name (never a token).
    events_seen: dict[str, int] = field(default_factory=dict)
    # Gmail's history id: the sample mail is at HISTORY_FLOOR, each email that arrives later one more.
    history_id: int = 1000

    @classmethod
    def fresh(cls) -> SandboxState:
        now = time.time()
        return cls(
            mailbox=sample_mailbox(now),
            sheet={"id": SPREADSHEET_ID, "title": "Orders 2026",
                   "rows": [["Date", "Customer", "Item", "Amount"],
                            ["2026-11-28", "Lena Ortiz", "Chocolate cake", "45.00"],
                            ["2026-11-29", "Town Market", "200 croissants", "180.00"]]},
            events=sample_events(now),
        )

    def count(self, event: str) -> None:
        self.events_seen[event] = self.events_seen.get(event, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxState:
        state = cls(**{k: v for k, v in data.items() if k not in ("grants", "tokens", "codes")})
        state.grants = {k: Grant(**v) for k, v in data.get("grants", {}).items()}
        state.tokens = {k: Token(**v) for k, v in data.get("tokens", {}).items()}
        return state


class Store:
    """The state behind one lock, saved after each change when a path is given."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.state = self._load()

    def _load(self) -> SandboxState:
        if self.path is not None and self.path.exists():
            try:
                return SandboxState.from_json(json.loads(self.path.read_text(encoding="utf-8")))
            except (ValueError, TypeError, KeyError):
                pass  # a state from an older sandbox: start afresh
        return SandboxState.fresh()

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            data = self.state.to_json()
            data.pop("codes", None)  # single-use and short-lived: never worth keeping
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            temporary.replace(self.path)


def encoded_body(text: str) -> str:
    """A message body as Gmail sends it: base64url without padding."""
    return _b64(text)
