"""The chat's reply to a draft: Claude proposes within the catalog or asks; nothing runs, nothing is saved.

The conversation is read from chat_messages in the client's tenant transaction. Each model
call is priced as a cost event right after it returns; the budget is checked before each call.
An invalid proposal goes back to the model with its validation errors (a tool_result marked
is_error) at most MAX_REPAIRS times, then becomes a question to the client. The chat holds no
credential and runs no capability: its only outputs are a question or a validated proposal
that the intake shows to the client for approval.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from agent_service.capabilities import LLMSettings, LLMUsage
from agent_service.capabilities.anthropic import cached_prefix
from agent_service.chat import repository
from agent_service.chat.model import ModelAnswer, ModelFailed, ModelTimedOut, call_messages
from agent_service.chat.prompt import ASK, CHAT_PROMPT_VERSION, MAX_MESSAGE_CHARACTERS, PROPOSE, system_prompt, tools
from agent_service.chat.proposal import check_proposal, plain_words, providers_to_connect, scopes_by_provider
from agent_service.runs.prices import PRICE_VERSION, llm_cost_microusd
from agent_service.runs.triggers import BudgetExhausted, month_to_date
from shared.db import Database, tenant_transaction
from shared.errors import HapexError, NotFound

logger = logging.getLogger(__name__)

MAX_REPAIRS = 2
# The conversation the model sees: the latest messages only, so a long chat stays bounded.
MAX_CONVERSATION_MESSAGES = 40
# The whole reply, repairs included; the intake waits a little longer than this.
REPLY_SECONDS = 110.0
CALL_SECONDS = 60.0
MIN_CALL_SECONDS = 10.0

AFTER_REPAIRS = ("I could not turn that into an automation Hapex can run yet. Could you describe it again "
                 "step by step, with the exact details each step needs (for example the Slack channel, "
                 "the spreadsheet or the email address)?")
DECLINED = "I can't help with that request. Could you describe the automation you want differently?"


class ChatRefused(HapexError):
    name = "chat_refused"
    status = 409
    message = "The chat cannot answer this draft."


class ChatUnavailable(ChatRefused):
    name = "chat_unavailable"
    status = 503
    message = "The build chat is unavailable on this Hapex (no Anthropic API key). Use the form builder instead."


class DraftMissing(NotFound, ChatRefused):
    message = "No such draft for this client."


class NothingToAnswer(ChatRefused):
    name = "nothing_to_answer"
    message = "The conversation has no message from the client waiting for an answer."


class ChatBudgetExhausted(BudgetExhausted, ChatRefused):
    """The same condition as a run over budget (one name), told as the chat's."""

    message = ("This month's budget is used up, so the chat did not call Claude. Raise the budget or wait for "
               "next month.")


@dataclass(frozen=True)
class ChatContext:
    """All the chat is given: the database, Hapex's model settings and the CA bundle; no vault."""

    db: Database
    llm: LLMSettings
    verify: str


@dataclass(frozen=True)
class Question:
    text: str
    model_calls: int

    kind = "question"

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "prompt_version": CHAT_PROMPT_VERSION}


@dataclass(frozen=True)
class Proposal:
    """A validated automation with what it needs, all derived from the catalog but `message`."""

    automation: dict[str, Any]
    message: str
    model_calls: int
    scopes: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    summary: str = ""

    kind = "proposal"

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "automation": self.automation, "scopes": self.scopes,
                "providers": self.providers, "summary_in_plain_words": self.summary, "message": self.message,
                "prompt_version": CHAT_PROMPT_VERSION}


def is_available(chat: ChatContext) -> bool:
    return chat.llm.api_key is not None and bool(chat.llm.api_key)


def over_budget(chat: ChatContext, client_id: uuid.UUID) -> bool:
    with tenant_transaction(chat.db, client_id) as conn:
        budget, spent = month_to_date(conn)
    return budget is not None and spent >= budget


def reply(chat: ChatContext, *, client_id: uuid.UUID, draft_id: uuid.UUID,
          clock: Callable[[], float] = time.monotonic, session: requests.Session | None = None
          ) -> Question | Proposal:
    """The chat's next answer to the draft's conversation, or ChatRefused / ModelFailed."""
    if not is_available(chat):
        raise ChatUnavailable()
    with tenant_transaction(chat.db, client_id) as conn:
        draft = repository.get_draft_proposal(conn, draft_id=draft_id)
        if draft is None:
            raise DraftMissing()
        rows = repository.recent_messages(conn, client_id=client_id, draft_id=draft_id,
                                          limit=MAX_CONVERSATION_MESSAGES)
    messages = conversation(rows)
    if not messages or messages[-1]["role"] != "user":
        raise NothingToAnswer()
    system = system_blocks(draft)
    deadline = clock() + REPLY_SECONDS
    problems: list[str] = []
    for attempt in range(MAX_REPAIRS + 1):
        if over_budget(chat, client_id):
            raise ChatBudgetExhausted()
        remaining = deadline - clock()
        if remaining < MIN_CALL_SECONDS:
            raise ModelTimedOut()
        answer = call_messages(chat.llm, verify=chat.verify, system=system, messages=messages, tools=tools(),
                               read_timeout=min(CALL_SECONDS, remaining), session=session)
        record_cost(chat, client_id, answer.usage)
        calls = attempt + 1
        outcome, problems = _interpret(answer, calls)
        if outcome is not None:
            _log_reply(client_id, draft_id, outcome.kind, calls)
            return outcome
        messages = [*messages, {"role": "assistant", "content": answer.content},
                    {"role": "user", "content": _tool_results(answer, problems)}]
    _log_reply(client_id, draft_id, "question_after_repairs", MAX_REPAIRS + 1)
    return Question(AFTER_REPAIRS, MAX_REPAIRS + 1)


def conversation(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored messages as Messages API turns: the client is the user; turns alternate, starting with the user."""
    turns: list[dict[str, Any]] = []
    for row in rows:
        role = "user" if row["role"] == "client" else "assistant"
        if not turns and role == "assistant":
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + row["content"]
        else:
            turns.append({"role": role, "content": row["content"]})
    return turns


def system_blocks(draft: dict[str, Any]) -> list[dict[str, Any]]:
    """The versioned prompt (cached with the tools before it: the stable prefix), then the proposal shown (if any)."""
    blocks = cached_prefix([{"type": "text", "text": system_prompt()}])
    if draft.get("proposal") is not None:
        state = ("The client approved this proposal; a new one replaces the saved automation only if the "
                 "client approves it again." if draft.get("approved_revision") == draft.get("proposal_revision")
                 else "The client has not approved it yet.")
        blocks.append({"type": "text", "text": "The proposal now shown to the client. " + state + "\n```json\n"
                       + json.dumps(draft["proposal"], ensure_ascii=False, indent=1) + "\n```"})
    return blocks


def record_cost(chat: ChatContext, client_id: uuid.UUID, used: LLMUsage) -> None:
    """One cost event per model call, priced from the versioned table, exactly as `usage` counted it."""
    with tenant_transaction(chat.db, client_id) as conn:
        repository.insert_chat_cost_event(
            conn, client_id=client_id, model=used.model, input_tokens=used.input_tokens,
            output_tokens=used.output_tokens, cache_creation_input_tokens=used.cache_creation_input_tokens,
            cache_read_input_tokens=used.cache_read_input_tokens, price_version=PRICE_VERSION,
            amount_microusd=llm_cost_microusd(used.model, used.input_tokens, used.output_tokens,
                                              used.cache_creation_input_tokens, used.cache_read_input_tokens))


def _interpret(answer: ModelAnswer, calls: int) -> tuple[Question | Proposal | None, list[str]]:
    """A final answer, or the problems to send back to the model."""
    uses = [block for block in answer.content if block.get("type") == "tool_use"]
    if not uses:
        if answer.stop_reason == "refusal":
            return Question(DECLINED, calls), []
        text = " ".join(str(b.get("text", "")) for b in answer.content if b.get("type") == "text").strip()
        if not text:
            raise ModelFailed("Claude answered without a proposal or a question. Your message is saved; "
                              "try again in a moment.")
        return Question(text[:MAX_MESSAGE_CHARACTERS], calls), []
    first = uses[0]
    tool_input = first.get("input")
    if first.get("name") == ASK:
        question = tool_input.get("question") if isinstance(tool_input, dict) else None
        if isinstance(question, str) and question.strip():
            return Question(question.strip()[:MAX_MESSAGE_CHARACTERS], calls), []
        return None, ["`question` must be a non-empty string."]
    if first.get("name") == PROPOSE:
        checked = check_proposal(tool_input)
        if checked.automation is None:
            return None, checked.problems
        steps, trigger = checked.automation["steps"], checked.automation.get("trigger")
        return Proposal(checked.automation, checked.message, calls, scopes=scopes_by_provider(steps, trigger),
                        providers=providers_to_connect(steps, trigger), summary=plain_words(checked.automation)), []
    return None, [f"Answer with {PROPOSE} or {ASK}; there is no other tool."]


def _tool_results(answer: ModelAnswer, problems: list[str]) -> list[dict[str, Any]]:
    """A tool_result for every tool_use of the answer (the API requires each); the first carries the errors."""
    uses = [block for block in answer.content if block.get("type") == "tool_use"]
    explained = ("Hapex could not accept this:\n" + "\n".join(f"- {p}" for p in problems)
                 + f"\nFix exactly these and call {PROPOSE} again, or ask the client with {ASK}.")
    results = []
    for index, block in enumerate(uses):
        text = explained if index == 0 else "Ignored: answer with one tool call at a time."
        results.append({"type": "tool_result", "tool_use_id": str(block.get("id", "")), "is_error": True,
                         "content": text})
    return results


def _log_reply(client_id: uuid.UUID, draft_id: uuid.UUID, outcome: str, calls: int) -> None:
    logger.info("chat replied", extra={"client_id": client_id, "draft_id": draft_id, "status": outcome,
                                       "count": calls})
