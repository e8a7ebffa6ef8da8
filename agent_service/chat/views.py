"""/v1/clients/<client_id>/chat: whether the build chat can answer, and its reply to a draft."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from agent_service.chat import service
from agent_service.chat.model import ModelFailed
from agent_service.chat.prompt import CHAT_PROMPT_VERSION
from agent_service.db import get_runtime
from shared.errors import APIError

blueprint = Blueprint("chat", __name__, url_prefix="/v1/clients/<uuid:client_id>")


class ChatError(APIError):
    """The chat could not answer."""


def _context() -> service.ChatContext:
    """The chat's narrow view of the runtime: database, model settings, CA bundle (never the vault)."""
    rt = get_runtime()
    return service.ChatContext(db=rt.db, llm=rt.llm, verify=rt.verify)


def _error(status: int, name: str, message: str) -> ChatError:
    error = ChatError(message)
    error.status, error.name = status, name
    return error


@blueprint.get("/chat")
def chat_status(client_id: uuid.UUID) -> ResponseReturnValue:
    """Before the client types: is the chat configured, and is this month's budget left?"""
    chat = _context()
    return jsonify(available=service.is_available(chat), over_budget=service.over_budget(chat, client_id),
                   prompt_version=CHAT_PROMPT_VERSION)


@blueprint.post("/chat/<uuid:draft_id>/replies")
def chat_reply(client_id: uuid.UUID, draft_id: uuid.UUID) -> ResponseReturnValue:
    """The chat's answer to the draft's stored conversation: a proposal or a question."""
    try:
        answer = service.reply(_context(), client_id=client_id, draft_id=draft_id)
    except service.ChatRefused as refused:
        raise _error(refused.status, refused.error, refused.message) from None
    except ModelFailed as failed:
        raise _error(502, failed.error, failed.message) from None
    return jsonify(answer.body())
