"""Asking the agent service for the chat's reply, and whether the chat can answer at all.

The reply is AgentClient.chat_reply, with its own longer timeout since one reply may take
several model calls; here the agent's refusals become the sentences the chat page shows.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from intake import agent_client
from intake.agent_client import AgentRefused, AgentUnavailable, ChatReply
from intake.db import get_agent

logger = logging.getLogger(__name__)

UNREACHABLE = ("Hapex's chat service could not be reached. Your message is saved; "
               "try again in a moment.")
MESSAGES = {
    agent_client.CHAT_UNAVAILABLE: ("The build chat is unavailable right now. Your message is saved; you can "
                                    "build the automation in the form builder instead."),
    agent_client.BUDGET_EXHAUSTED: ("This month's budget is used up, so Claude was not asked. Your message is "
                                    "saved; raise your budget or continue next month."),
    agent_client.NOTHING_TO_ANSWER: "There is no message waiting for an answer.",
}
STATUSES = {agent_client.CHAT_UNAVAILABLE: 503, agent_client.BUDGET_EXHAUSTED: 409,
            agent_client.NOTHING_TO_ANSWER: 409}
MODEL_FAILED = "Claude could not answer just now. Your message is saved."


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
        status = get_agent().chat_status(client_id)
    except (AgentUnavailable, AgentRefused):
        return ChatState(reachable=False)
    return ChatState(reachable=True, available=status.available, over_budget=status.over_budget)


def ask_for_reply(client_id: uuid.UUID, draft_id: uuid.UUID) -> ChatReply:
    """The agent's answer (a proposal or a question) to the draft's stored conversation, or ReplyFailed."""
    try:
        return get_agent().chat_reply(client_id, draft_id)
    except AgentUnavailable:
        raise ReplyFailed("unreachable", UNREACHABLE, 503) from None
    except AgentRefused as refused:
        raise _failed(refused) from None


def _failed(refused: AgentRefused) -> ReplyFailed:
    if refused.name == agent_client.NOT_FOUND:
        return ReplyFailed("not_found", "No such draft.", 404)
    if refused.name in (agent_client.MODEL_ERROR, agent_client.MODEL_TIMEOUT):
        # The agent's sentence for these is written for the client and names no content.
        return ReplyFailed(refused.name, refused.message or MODEL_FAILED, 502)
    if refused.name in MESSAGES:
        return ReplyFailed(refused.name, MESSAGES[refused.name], STATUSES[refused.name])
    logger.warning("chat reply refused", extra={"error": refused.name})
    return ReplyFailed("unreachable", UNREACHABLE, 503)
