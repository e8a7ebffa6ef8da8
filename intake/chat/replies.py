"""Asking the agent service for the chat's reply, and whether the chat can answer at all.

The reply call goes through the AgentClient's session (same TLS verification, same
transport) but with its own timeout, since one reply may take several model calls, and it
reads the agent's error body on a 5xx too (502 model_error/model_timeout, 503
chat_unavailable), which AgentClient.request turns into a bare AgentUnavailable.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from flask import current_app

from intake.agent_client import AgentUnavailable
from intake.db import get_agent

logger = logging.getLogger(__name__)

# The agent bounds one reply (repairs included) at 110 s; the intake waits a little longer.
REPLY_TIMEOUT = (3.05, 130.0)

UNREACHABLE = ("Hapex's chat service could not be reached. Your message is saved; "
               "try again in a moment.")
MESSAGES = {
    "chat_unavailable": ("The build chat is unavailable right now. Your message is saved; you can build "
                         "the automation in the form builder instead."),
    "budget_exhausted": ("This month's budget is used up, so Claude was not asked. Your message is saved; "
                         "raise your budget or continue next month."),
    "nothing_to_answer": "There is no message waiting for an answer.",
}
STATUSES = {"chat_unavailable": 503, "budget_exhausted": 409, "nothing_to_answer": 409}


@dataclass(frozen=True)
class ChatState:
    """What the chat page needs to know before the client types."""

    reachable: bool
    available: bool = False
    over_budget: bool = False


class ReplyFailed(Exception):
    """The chat did not answer; `message` is for the client, `status` for the page."""

    def __init__(self, error: str, message: str, status: int) -> None:
        self.error, self.message, self.status = error, message, status
        super().__init__(error)


def chat_state(client_id: uuid.UUID) -> ChatState:
    try:
        body = get_agent().get_json(f"/v1/clients/{client_id}/chat")
    except (AgentUnavailable, ValueError):
        return ChatState(reachable=False)
    if not isinstance(body, dict):
        return ChatState(reachable=False)
    return ChatState(reachable=True, available=body.get("available") is True,
                     over_budget=body.get("over_budget") is True)


def ask_for_reply(client_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any]:
    """The agent's answer (kind proposal or question) to the draft's stored conversation, or ReplyFailed."""
    agent = get_agent()
    token = current_app.config["HAPEX"].agent_service_token
    try:
        response = agent.session.request(
            "POST", f"{agent.base_url}/v1/clients/{client_id}/chat/{draft_id}/replies", json={},
            headers={"Authorization": f"Bearer {token.reveal()}"}, timeout=REPLY_TIMEOUT, verify=agent.verify,
            allow_redirects=False)
    except requests.RequestException as exc:
        logger.warning("chat service unreachable", extra={"error_class": type(exc).__name__})
        raise ReplyFailed("unreachable", UNREACHABLE, 503) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        logger.warning("chat service answered without JSON", extra={"status_code": response.status_code})
        raise ReplyFailed("unreachable", UNREACHABLE, 503)
    if response.status_code == 200 and body.get("kind") in ("proposal", "question"):
        return body
    error = str(body.get("error", ""))
    if response.status_code == 404:
        raise ReplyFailed("not_found", "No such draft.", 404)
    if response.status_code == 502 and error in ("model_error", "model_timeout"):
        # The agent's sentence for these is written for the client and names no content.
        message = str(body.get("message") or "Claude could not answer just now. Your message is saved.")
        raise ReplyFailed(error, message, 502)
    if error in MESSAGES:
        raise ReplyFailed(error, MESSAGES[error], STATUSES[error])
    logger.warning("chat service error", extra={"status_code": response.status_code})
    raise ReplyFailed("unreachable", UNREACHABLE, 503)
