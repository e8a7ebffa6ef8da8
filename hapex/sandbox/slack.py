"""Slack-shaped API: chat.postMessage as Slack answers it (errors are ok:false at HTTP 200)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from hapex.sandbox import oauth
from hapex.sandbox.state import CHANNELS
from hapex.sandbox.views import store

bp = Blueprint("slack", __name__, url_prefix="/slack/api")


@bp.post("/chat.postMessage")
def post_message() -> Response:
    access = oauth.bearer_access("slack")
    if access is None:
        return jsonify(ok=False, error="invalid_auth")
    if "chat:write" not in access.scopes:
        return jsonify(ok=False, error="missing_scope", needed="chat:write")
    body = request.get_json(silent=True) or request.form
    channel, text = str(body.get("channel", "")), str(body.get("text", ""))
    by_name = {f"#{name}": cid for cid, name in CHANNELS.items()}
    channel_id = by_name.get(channel, channel if channel in CHANNELS else None)
    if channel_id is None:
        return jsonify(ok=False, error="channel_not_found")
    if not text.strip():
        return jsonify(ok=False, error="no_text")
    if len(text) > 40_000:
        return jsonify(ok=False, error="msg_too_long")
    ts = f"{time.time():.6f}"
    with store().lock:
        store().state.slack_messages.append({"channel": channel_id, "ts": ts, "text": text, "user": "Hapex (app)"})
        store().state.count("slack.chat.postMessage")
        store().save()
    return jsonify(ok=True, channel=channel_id, ts=ts,
                   message={"type": "message", "text": text, "bot_id": "B0SANDBOX", "ts": ts})
