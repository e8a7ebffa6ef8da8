"""/v1/clients/<client_id>/chat: whether the build chat can answer, and its reply to a draft."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint

from agent_service.chat import service
from agent_service.chat.model import ModelFailed, ModelTimedOut
from agent_service.chat.prompt import CHAT_PROMPT_VERSION
from agent_service.chat.schemas import ChatAnswerSchema, ChatStatusSchema
from agent_service.contract import contract
from agent_service.db import get_runtime

blueprint = Blueprint("chat", __name__, url_prefix="/v1/clients/<uuid:client_id>")


def _context() -> service.ChatContext:
    """The chat's narrow view of the runtime: database, model settings, CA bundle (never the vault)."""
    rt = get_runtime()
    return service.ChatContext(db=rt.db, llm=rt.llm, verify=rt.verify)


@blueprint.get("/chat")
@contract(ChatStatusSchema)
def chat_status(client_id: uuid.UUID) -> dict[str, Any]:
    """Before the client types: is the chat configured, and is this month's budget left?"""
    chat = _context()
    return {"available": service.is_available(chat), "over_budget": service.over_budget(chat, client_id),
            "prompt_version": CHAT_PROMPT_VERSION}


@blueprint.post("/chat/<uuid:draft_id>/replies")
@contract(ChatAnswerSchema, refusals=(service.ChatUnavailable, service.DraftMissing, service.NothingToAnswer,
                                      service.ChatBudgetExhausted, ModelFailed, ModelTimedOut))
def chat_reply(client_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any]:
    """The chat's answer to the draft's stored conversation: a proposal or a question.

    Reads the draft's messages itself (no body) and asks Claude, constrained to the catalog. A
    proposal is validated like a hand-built automation and its scopes come from the catalog;
    nothing is saved and nothing runs. Every model call is a cost event; over this month's
    budget no call is made.
    """
    return service.reply(_context(), client_id=client_id, draft_id=draft_id).body()
