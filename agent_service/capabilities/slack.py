"""Slack: post a message with chat.postMessage, whose errors arrive as 200 with ok:false."""

from __future__ import annotations

import json
import re
from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    ProviderRefused,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
    StepResult,
    require_token,
    retry_after_seconds,
)
from shared.secret import Secret

UNAUTHORIZED = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
TRANSIENT = frozenset({"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable",
                       "request_timeout", "team_added_to_org"})
EXPLAINED = {
    "channel_not_found": "Slack does not know that channel, or the Hapex app cannot see it.",
    "not_in_channel": "The Hapex app is not in that channel; invite it with /invite @Hapex.",
    "is_archived": "That Slack channel is archived.",
    "msg_too_long": "The message is too long for Slack.",
    "missing_scope": "The Slack connection lacks the chat:write scope; reconnect Slack.",
    "restricted_action": "The Slack workspace does not allow the Hapex app to post there.",
}
# Slack's error codes are short identifiers; anything else is not repeated.
_ERROR_CODE = re.compile(r"^[a-z_]{1,60}$")


def post_message(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """One message in a channel.

    chat.postMessage has no idempotency key (client_msg_id is for user clients, not apps);
    the run engine never re-runs a step recorded as done.
    """
    body = json.dumps({"channel": data["channel"], "text": data["text"]}, ensure_ascii=False).encode()
    response = ctx.http.request("POST", "chat.postMessage", token=require_token(token, ctx.http.provider), data=body,
                                headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        answer = response.json()
    except ValueError:
        raise OutputInvalid("Slack answered with something other than JSON.") from None
    if not isinstance(answer, dict):
        raise OutputInvalid("Slack answered with something other than a JSON object.")
    if answer.get("ok") is not True:
        raise slack_error(answer.get("error"), retry_after_seconds(response))
    if not isinstance(answer.get("channel"), str) or not isinstance(answer.get("ts"), str):
        raise OutputInvalid("Slack answered without the message's channel and timestamp.")
    return StepResult({"channel": answer["channel"], "ts": answer["ts"]},
                      counts={"messages": 1, "characters": len(data["text"])})


def slack_error(code: Any, retry_after: float | None = None) -> Exception:
    """The step error for one of Slack's ok:false codes."""
    code = code if isinstance(code, str) and _ERROR_CODE.match(code) else "unknown_error"
    if code in UNAUTHORIZED:
        return ProviderUnauthorized(f"Slack refused the access token ({code}).")
    if code in TRANSIENT:
        return ProviderTransient(f"Slack is busy or unavailable ({code}).", retry_after=retry_after)
    return ProviderRefused(EXPLAINED.get(code, f"Slack refused the message ({code})."))
