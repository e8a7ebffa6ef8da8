"""Gmail: list recent mail by label, search, read bodies, create drafts (users.messages, users.drafts)."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import time
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

from agent_service.capabilities.base import OutputInvalid, StepContext, StepFailed, StepResult, path_segment
from agent_service.capabilities.google_api import google_json
from shared.secret import Secret

GMAIL = "gmail/v1/users/me"
METADATA_HEADERS = ["From", "Subject", "Date"]
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def list_recent(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Recent mail under gmail.metadata, which refuses `q`: filter by label, then by date here."""
    cutoff_ms = (time.time() - data.get("newer_than_days", 1) * 86_400) * 1000
    listing = google_json(ctx, "GET", f"{GMAIL}/messages", token,
                          params={"labelIds": list(data.get("label_ids", ["INBOX"])),
                                  "maxResults": data.get("max_results", 20)})
    messages = []
    for reference in _references(listing):
        message = _metadata(ctx, token, reference)
        # Gmail lists newest first, so the first message past the cutoff ends the window.
        if _internal_date_ms(message) < cutoff_ms:
            break
        messages.append(_summary(message))
    return StepResult({"messages": messages}, counts={"messages": len(messages)})


def search(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Messages matching a Gmail search, as sender, subject and date."""
    listing = google_json(ctx, "GET", f"{GMAIL}/messages", token,
                          params={"q": data["query"], "maxResults": data.get("max_results", 20)})
    messages = [_summary(_metadata(ctx, token, reference)) for reference in _references(listing)]
    return StepResult({"messages": messages}, counts={"messages": len(messages)})


def read(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """The text of each message: text/plain parts, or the text of the HTML part when there is none."""
    emails = []
    total_bytes = 0
    for message_id in data["message_ids"]:
        message = google_json(ctx, "GET", f"{GMAIL}/messages/{path_segment(message_id, 'Gmail message id')}",
                              token, params={"format": "full"})
        if not isinstance(message, dict) or not isinstance(message.get("payload"), dict):
            raise OutputInvalid("Gmail answered without the message's content.")
        headers = _headers(message["payload"])
        body = body_text(message["payload"])
        total_bytes += len(body.encode())
        emails.append({"id": str(message.get("id", message_id)), "sender": headers.get("from", ""),
                       "subject": headers.get("subject", ""), "body_text": body})
    return StepResult({"emails": emails}, counts={"messages": len(emails), "bytes": total_bytes})


def create_draft(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """A draft the client reviews and sends; Hapex never sends mail.

    Gmail has no idempotency key for drafts.create; the run engine never re-runs a step
    recorded as done, and a draft is harmless to the recipient if one is duplicated.
    """
    message = EmailMessage(policy=policy.SMTP)
    try:
        message["To"] = ", ".join(data["to"])
        message["Subject"] = data["subject"]
    except ValueError:
        raise StepFailed("The recipients and subject must each fit on one line.") from None
    message.set_content(data["body_text"])
    raw = base64.urlsafe_b64encode(message.as_bytes()).decode("ascii")
    draft = google_json(ctx, "POST", f"{GMAIL}/drafts", token, json={"message": {"raw": raw}})
    if not isinstance(draft, dict) or not isinstance(draft.get("id"), str):
        raise OutputInvalid("Gmail answered without a draft id.")
    return StepResult({"draft_id": draft["id"]}, counts={"drafts": 1, "recipients": len(data["to"])})


def _references(listing: Any) -> list[str]:
    if not isinstance(listing, dict):
        raise OutputInvalid("Gmail answered with an unexpected message list.")
    references = listing.get("messages", [])
    if not isinstance(references, list):
        raise OutputInvalid("Gmail answered with an unexpected message list.")
    return [str(item["id"]) for item in references if isinstance(item, dict) and "id" in item]


def _metadata(ctx: StepContext, token: Secret | None, message_id: str) -> dict[str, Any]:
    message = google_json(ctx, "GET", f"{GMAIL}/messages/{path_segment(message_id, 'Gmail message id')}", token,
                          params={"format": "metadata", "metadataHeaders": METADATA_HEADERS})
    if not isinstance(message, dict) or "id" not in message:
        raise OutputInvalid("Gmail answered with an unexpected message.")
    return message


def _summary(message: dict[str, Any]) -> dict[str, str]:
    headers = _headers(message.get("payload") or {})
    internal = _internal_date_ms(message)
    date = (datetime.fromtimestamp(internal / 1000, UTC).isoformat().replace("+00:00", "Z")
            if internal else headers.get("date", ""))
    return {"id": str(message["id"]), "thread_id": str(message.get("threadId", "")),
            "sender": headers.get("from", ""), "subject": headers.get("subject", ""), "date": date}


def _internal_date_ms(message: dict[str, Any]) -> int:
    try:
        return int(message.get("internalDate", 0))
    except (TypeError, ValueError):
        return 0


def _headers(payload: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for header in payload.get("headers") or []:
        if isinstance(header, dict) and isinstance(header.get("name"), str):
            headers.setdefault(header["name"].lower(), str(header.get("value", "")))
    return headers


def body_text(payload: dict[str, Any]) -> str:
    """The readable text of a message part tree."""
    plain: list[str] = []
    html: list[str] = []
    _collect(payload, plain, html)
    if plain:
        return "\n".join(plain)
    return "\n".join(_html_to_text(part) for part in html)


def _collect(part: dict[str, Any], plain: list[str], html: list[str]) -> None:
    mime_type = str(part.get("mimeType", "")).lower()
    if mime_type.startswith("multipart/"):
        for child in part.get("parts") or []:
            if isinstance(child, dict):
                _collect(child, plain, html)
        return
    if part.get("filename"):  # an attachment, even when it is text
        return
    body = part.get("body") or {}
    if mime_type not in {"text/plain", "text/html"} or not body.get("data"):
        return
    text = _decode(str(body["data"]), _headers(part).get("content-type", ""))
    (plain if mime_type == "text/plain" else html).append(text)


def _decode(data: str, content_type: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise OutputInvalid("Gmail answered with a message part that is not base64url.") from None
    match = _CHARSET.search(content_type)
    charset = match.group(1) if match else "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return raw.decode(charset, errors="replace")


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML body."""

    _HIDDEN = {"script", "style", "head", "title"}
    _BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.chunks.append(data)


def _html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return "\n".join(line for line in lines if line)
