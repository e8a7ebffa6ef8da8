"""A stand-in for the Anthropic Messages API: deterministic, and saying in every answer that it is one.

It checks the sandbox's API key and the request's shape, reports usage the way the API
does (input and output tokens, and cache_creation_input_tokens / cache_read_input_tokens
for the prefix marked with cache_control), and answers the three kinds of call Hapex makes:
a summary as text, a forced tool call (classify, extract), and the build chat's choice between
proposing an automation from the catalog and asking a question.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hapex.sandbox.views import store

bp = Blueprint("claude", __name__, url_prefix="/anthropic")
MARK = "[Sandbox stand-in for Claude: not a real model]"
PROPOSE, ASK = "propose_automation", "ask_question"


def tokens_of(value: Any) -> int:
    """Roughly four characters a token, as a deterministic count."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return max(1, math.ceil(len(text) / 4))


def _error(status: int, kind: str, message: str) -> Response:
    response = jsonify(type="error", error={"type": kind, "message": message})
    response.status_code = status
    return response


def _has_cache_control(value: Any) -> bool:
    return isinstance(value, dict) and "cache_control" in value


def _blocks(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return list(value) if isinstance(value, list) else []


def usage_of(payload: dict[str, Any], output: Any) -> dict[str, int]:
    """The prompt in the API's cache order (tools, system, messages); everything up to the last
    block carrying cache_control is the cached prefix, written the first time and read after."""
    parts: list[Any] = list(payload.get("tools") or [])
    parts += _blocks(payload.get("system"))
    for message in payload.get("messages") or []:
        parts += _blocks(message.get("content") if isinstance(message, dict) else None)
    marked = [i for i, part in enumerate(parts) if _has_cache_control(part)]
    total = sum(tokens_of(part) for part in parts)
    created = read = 0
    if marked:
        prefix = parts[: marked[-1] + 1]
        prefix_tokens = sum(tokens_of(part) for part in prefix)
        digest = hashlib.sha256(json.dumps([payload.get("model"), prefix], sort_keys=True).encode()).hexdigest()
        with store().lock:
            seen = digest in store().state.cached_prefixes
            store().state.cached_prefixes[digest] = prefix_tokens
        read, created = (prefix_tokens, 0) if seen else (0, prefix_tokens)
    return {"input_tokens": total - created - read, "output_tokens": tokens_of(output),
            "cache_creation_input_tokens": created, "cache_read_input_tokens": read}


def _last_user_text(payload: dict[str, Any]) -> tuple[str, bool]:
    """The latest user text, and whether the latest user turn was a tool_result marked as an error."""
    for message in reversed(payload.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        blocks = _blocks(message.get("content"))
        errored = any(isinstance(b, dict) and b.get("type") == "tool_result" and b.get("is_error") for b in blocks)
        if errored:
            return "", True
        text = " ".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        if text:
            return text, False
    return "", False


def _document(payload: dict[str, Any]) -> str:
    text, _ = _last_user_text(payload)
    match = re.search(r"<document>\n?(.*?)\n?</document>", text, re.DOTALL)
    return match.group(1) if match else text


def summary_of(document: str) -> str:
    """A summary that names what it saw: emails by subject and sender when the document is a message list."""
    try:
        value = json.loads(document)
    except ValueError:
        value = None
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        items = [f"- {item.get('subject') or '(no subject)'} (from {item.get('sender') or 'unknown'})"
                 for item in value[:20]]
        return f"{MARK}\n{len(value)} email(s) found:\n" + "\n".join(items) if items else f"{MARK}\nNo emails found."
    words = document.split()
    return f"{MARK}\nSummary ({len(words)} words in): " + " ".join(words[:40]) + ("..." if len(words) > 40 else "")


_SCHEDULES = [
    (re.compile(r"every weekday at (\d{1,2})"), "{m} {h} * * 1-5"),
    (re.compile(r"every (?:day|morning) at (\d{1,2})"), "{m} {h} * * *"),
    (re.compile(r"every monday at (\d{1,2})"), "{m} {h} * * 1"),
]


def proposal_for(text: str) -> dict[str, Any] | None:
    """An automation from the catalog for a simple request: Gmail search, a Claude summary, a Slack post."""
    lowered = text.lower()
    if "slack" not in lowered or not re.search(r"gmail|email|inbox|mail", lowered):
        return None
    topic = re.search(r"(?:for|about)\s+([a-z0-9-]+)", lowered)
    query = topic.group(1) if topic else "invoice"
    query = query[:-1] if query.endswith("s") and len(query) > 3 else query
    channel = re.search(r"#([a-z0-9_-]{1,80})", lowered)
    steps: list[dict[str, Any]] = [{"capability": "gmail.search", "input": {"query": query, "max_results": 20}}]
    # Slack takes text, so the messages go through a summary whether or not the request says so.
    steps.append({"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}, "max_words": 120}})
    steps.append({"capability": "slack.post_message", "input": {
        "channel": f"#{channel.group(1) if channel else 'general'}", "text": {"$ref": "steps.1.text"}}})
    trigger: dict[str, Any] = {"kind": "manual"}
    for pattern, cron in _SCHEDULES:
        found = pattern.search(lowered)
        if found and int(found.group(1)) < 24:
            trigger = {"kind": "schedule", "cron": cron.format(m=0, h=int(found.group(1))), "timezone": "UTC"}
            break
    return {"message": f"{MARK} Here is an automation that searches Gmail for \"{query}\", has Claude "
                       "summarise what it finds and posts the summary to Slack.",
            "automation": {"name": f"{query.capitalize()} digest to Slack", "trigger": trigger, "steps": steps}}


def _answer(payload: dict[str, Any], content: list[dict[str, Any]], stop_reason: str) -> Response:
    with store().lock:
        store().state.count("anthropic.messages")
        number = store().state.events_seen["anthropic.messages"]
        store().save()
    return jsonify(id=f"msg_sandbox_{number:06d}", type="message", role="assistant",
                   model=str(payload.get("model") or "claude-sandbox"), content=content,
                   stop_reason=stop_reason, stop_sequence=None, usage=usage_of(payload, content))


def _tool_use(name: str, value: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:20]
    return {"type": "tool_use", "id": f"toolu_sandbox_{digest}", "name": name, "input": value}


def _forced_tool(payload: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    document = _document(payload)
    properties = (tool.get("input_schema") or {}).get("properties") or {}
    if tool.get("name") == "record_label":
        labels = list((properties.get("label") or {}).get("enum") or [])
        lowered = document.lower()
        label = next((lab for lab in labels if str(lab).lower() in lowered), labels[0] if labels else "")
        return _tool_use("record_label", {"label": label})
    values: dict[str, Any] = {}
    for name in properties:
        match = re.search(rf"{re.escape(name.replace('_', ' '))}\s*[:=]?\s*([^\n,;]+)", document, re.IGNORECASE)
        values[name] = match.group(1).strip() if match else None
    return _tool_use(str(tool.get("name")), values)


@bp.post("/v1/messages")
def messages() -> Response:
    key = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(key.encode(), current_app.config["SANDBOX_ANTHROPIC_KEY"].encode()):
        return _error(401, "authentication_error", "invalid x-api-key")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list) or not payload["messages"]:
        return _error(400, "invalid_request_error", "messages: field required")
    if not isinstance(payload.get("max_tokens"), int):
        return _error(400, "invalid_request_error", "max_tokens: field required")
    tools = {t.get("name"): t for t in payload.get("tools") or [] if isinstance(t, dict)}
    choice = payload.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") in tools:
        return _answer(payload, [_forced_tool(payload, tools[choice["name"]])], "tool_use")
    if PROPOSE in tools or ASK in tools:
        text, errored = _last_user_text(payload)
        proposal = None if errored else proposal_for(text)
        if proposal is not None and PROPOSE in tools:
            return _answer(payload, [_tool_use(PROPOSE, proposal)], "tool_use")
        question = (f"{MARK} I can propose simple automations, for example: \"every weekday at 8, search Gmail "
                    "for invoices, summarise with Claude, post to Slack\". Which emails should it look at, and "
                    "where should the result go?")
        return _answer(payload, [_tool_use(ASK, {"question": question})], "tool_use")
    return _answer(payload, [{"type": "text", "text": summary_of(_document(payload))}], "end_turn")
