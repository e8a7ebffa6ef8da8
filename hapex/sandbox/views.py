"""The sandbox's own pages: what it holds and what the automations did there (Slack, the sheet, drafts)."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from hapex.sandbox.state import BUSINESS, CHANNELS, Store

bp = Blueprint("pages", __name__)


@bp.app_context_processor
def _every_page() -> dict[str, object]:
    # Every page's menu names every channel: the gallery's starters post to #accounts, the chat's to #general.
    return {"menu_channels": list(CHANNELS.values())}


def store() -> Store:
    """The one accessor for the sandbox's state."""
    found: Store = current_app.extensions["sandbox_store"]
    return found


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@bp.get("/")
def index() -> str:
    from hapex.sandbox.others import NOTION_PAGE_ID

    state = store().state
    with store().lock:
        grants = sorted(state.grants.values(), key=lambda g: g.created_at, reverse=True)
    return render_template("index.html", business=BUSINESS, grants=grants, when=_when,
                           counts=dict(sorted(state.events_seen.items())), channels=CHANNELS,
                           messages=len(state.slack_messages), drafts=len(state.drafts),
                           sheet=state.sheet, notion_page_id=NOTION_PAGE_ID, notion_blocks=len(state.notion_blocks),
                           contacts=state.contacts)


@bp.get("/slack/channels/<name>")
def slack_channel(name: str) -> tuple[str, int] | str:
    channel_id = next((cid for cid, n in CHANNELS.items() if n == name), None)
    if channel_id is None:
        return render_template("error.html", error="channel_not_found", description=name), 404
    messages = [m for m in store().state.slack_messages if m["channel"] == channel_id]
    return render_template("slack_channel.html", name=name, messages=list(reversed(messages)),
                           when=lambda ts: _when(float(ts)), channels=CHANNELS)


@bp.get("/google/sheet")
def sheet() -> str:
    return render_template("sheet.html", sheet=store().state.sheet)


@bp.get("/google/gmail")
def gmail() -> str:
    state = store().state
    return render_template("gmail.html", mailbox=state.mailbox, drafts=list(reversed(state.drafts)),
                           when=lambda ms: _when(int(ms) / 1000))


def _same_origin() -> bool:
    """The sandbox's own buttons post from its own pages; a cross-site form is refused."""
    origin = request.headers.get("Origin")
    return origin is None or origin.rstrip("/") == request.host_url.rstrip("/")


@bp.post("/google/gmail/arrive")
def gmail_arrive() -> ResponseReturnValue:
    """A new email arrives, for a "new email in Gmail" automation to find at its next check."""
    from hapex.sandbox.google import deliver_sample_email

    if not _same_origin():
        return render_template("error.html", error="cross_site", description="Refused."), 403
    deliver_sample_email()
    return redirect(url_for("pages.gmail"), 303)


@bp.get("/google/calendar")
def calendar() -> str:
    return render_template("calendar.html", events=store().state.events)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200
