"""One call to the Anthropic Messages API for the chat, with Hapex's own key.

Errors carry a sentence fit for the client and never the provider's body or the request
(either can quote the conversation).

The request follows the SDK 2.10.0 / API version 2026-10-21 shape (see
agent_service.capabilities.anthropic): no forced `tool_choice` (Claude Sonnet 5.5 answers one
with a 400), so the model may answer in text, which the chat takes as its question. Two cache
breakpoints: the caller's stable system prompt (with the tools before it) and the end of the
conversation, so that the next turn, or a repair, reads all of it from the cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

from agent_service.capabilities import LLMSettings, LLMUsage, OutputInvalid
from agent_service.capabilities.anthropic import cached_prefix, headers, usage
from agent_service.outbound_tls import outbound_session
from shared.errors import HapexError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# Adaptive thinking (on by default on Sonnet 5.5) counts towards max_tokens: room for it and a proposal.
MAX_TOKENS = 8192
CHAT_EFFORT = "medium"


class ModelFailed(HapexError):
    name = "model_error"
    status = 502
    message = "Claude could not answer just now. Your message is saved; try again in a moment."


class ModelTimedOut(ModelFailed):
    name = "model_timeout"
    message = "Claude did not answer in time. Your message is saved; try again in a moment."


@dataclass(frozen=True)
class ModelAnswer:
    """The decoded response and the tokens it was billed for."""

    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: LLMUsage


def call_messages(llm: LLMSettings, *, verify: str, system: list[dict[str, Any]], messages: list[dict[str, Any]],
                  tools: list[dict[str, Any]], read_timeout: float,
                  session: requests.Session | None = None) -> ModelAnswer:
    """POST /v1/messages with the chat's tools; the model answers with one of them or in text."""
    key = llm.api_key
    if key is None or not key:
        raise ModelFailed("The build chat is unavailable: no Anthropic API key is configured.")
    base_url = llm.base_url.rstrip("/")
    if not base_url.startswith("https://"):
        raise ModelFailed("The build chat is unavailable: the Anthropic base URL must use https.")
    http = session or outbound_session(verify)
    http.trust_env = False
    payload = {"model": llm.model, "max_tokens": MAX_TOKENS, "system": system,
               "messages": cached_conversation(messages), "tools": tools, "output_config": {"effort": CHAT_EFFORT}}
    try:
        response = http.post(f"{base_url}/v1/messages", json=payload, timeout=(CONNECT_TIMEOUT, read_timeout),
                             verify=verify, allow_redirects=False, headers=headers(key))
    except requests.Timeout:
        raise ModelTimedOut() from None
    except requests.RequestException as exc:
        logger.warning("chat model unreachable", extra={"error_class": type(exc).__name__})
        raise ModelFailed("Claude could not be reached. Your message is saved; try again in a moment.") from None
    finally:
        if session is None:
            http.close()  # its own session, made for this one call
    return _decoded(response, llm.model)


def cached_conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns with a cache breakpoint on the last block of the last turn (text turns become one text block)."""
    if not messages:
        return messages
    last = messages[-1]
    content = last["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    return [*messages[:-1], {**last, "content": cached_prefix(blocks)}]


def _decoded(response: requests.Response, requested_model: str) -> ModelAnswer:
    status = response.status_code
    if status != 200:
        logger.warning("chat model refused the call", extra={"status_code": status, "provider": "anthropic"})
        if status in (429, 529):
            raise ModelFailed("Claude is busy right now. Your message is saved; try again in a minute.")
        if status in (401, 403):
            raise ModelFailed("The build chat is not set up correctly on this Hapex. Your message is saved.")
        if status == 400:
            raise ModelFailed("Claude could not take this conversation (it may be too long). "
                              "Your message is saved; start a new chat if it happens again.")
        raise ModelFailed(f"Claude answered with an error ({status}). Your message is saved; try again in a moment.")
    try:
        answer = response.json()
    except ValueError:
        raise ModelFailed("Claude answered with something other than a message.") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise ModelFailed("Claude answered with something other than a message.")
    try:
        used = usage(answer, requested_model)
    except OutputInvalid:
        raise ModelFailed("Claude answered without its token usage.") from None
    content = [block for block in answer["content"] if isinstance(block, dict)]
    stop_reason = answer.get("stop_reason")
    return ModelAnswer(content, stop_reason if isinstance(stop_reason, str) else None, used)
