"""What a ten-turn build chat costs in Claude tokens, without and with prompt caching.

The chat's own request (agent_service.chat: the versioned system prompt with the catalog, the
two tools, the conversation so far, and the cache breakpoints `call_messages` puts on them) goes
over HTTPS to the benchmark's stand-in (tests/bench/bench_standin.py), which answers with a
question and counts `usage` the way the Messages API does with prompt caching. "Before" sends the
very same requests with every `cache_control` taken out. Each call is priced with the price
table (agent_service/runs/prices.py) for the default model, as the chat's cost events are.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from agent_service.capabilities import LLMSettings
from agent_service.chat.model import call_messages
from agent_service.chat.prompt import tools
from agent_service.chat.service import system_blocks
from agent_service.outbound_tls import outbound_session
from agent_service.runs.prices import DEFAULT_LLM_MODEL, llm_cost_microusd
from shared.secret import Secret
from tests.bench.bench_setup import base_environment, local_tls, start_process, stop_processes, wait_until

USER_TURNS = (
    "Every weekday at 8, summarise the customer emails that came in overnight and post it to Slack.",
    "Only the emails sent to support@ and sales@.",
    "#support-digest",
    "Europe/Paris",
    "Keep it under 150 words.",
    "Yes, include the senders' names.",
    "Skip newsletters and automatic replies.",
    "If there were no emails, post nothing.",
    "Mark the urgent ones first.",
    "That's all, thanks.",
)


def _uncached(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_uncached(v) for v in value]
    return value


class WithoutCaching(requests.Session):
    """The chat's own session, sending each request with its cache breakpoints taken out."""

    def __init__(self, inner: requests.Session) -> None:
        super().__init__()
        self.inner = inner

    def post(self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        return self.inner.post(url, data=data, json=_uncached(copy.deepcopy(json)), **kwargs)


def _chat(llm: LLMSettings, ca: str, caching: bool) -> list[dict[str, Any]]:
    session = outbound_session(ca)
    http: requests.Session = session if caching else WithoutCaching(session)
    system, turns, calls = system_blocks({}), [], []
    try:
        for text in USER_TURNS:
            turns.append({"role": "user", "content": text})
            answer = call_messages(llm, verify=ca, system=system, messages=turns, tools=tools(), read_timeout=30,
                                   session=http)
            used = answer.usage
            calls.append({"input_tokens": used.input_tokens, "cache_creation_input_tokens":
                          used.cache_creation_input_tokens, "cache_read_input_tokens": used.cache_read_input_tokens,
                          "output_tokens": used.output_tokens,
                          "microusd": llm_cost_microusd(used.model, used.input_tokens, used.output_tokens,
                                                        used.cache_creation_input_tokens,
                                                        used.cache_read_input_tokens)})
            question = answer.content[0]["input"]["question"]
            turns.append({"role": "assistant", "content": question})
    finally:
        session.close()
    return calls


def _summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"microusd": sum(c["microusd"] for c in calls),
            "input_tokens": sum(c["input_tokens"] for c in calls),
            "cache_creation_input_tokens": sum(c["cache_creation_input_tokens"] for c in calls),
            "cache_read_input_tokens": sum(c["cache_read_input_tokens"] for c in calls),
            "output_tokens": sum(c["output_tokens"] for c in calls),
            "per_turn_microusd": [c["microusd"] for c in calls]}


def run(log_dir: Path) -> dict[str, Any]:
    tls = local_tls()
    port_file = log_dir / f"chat-standin-{uuid.uuid4().hex[:8]}.port"
    standin: subprocess.Popen[bytes] = start_process(
        ["-m", "tests.bench.bench_standin", str(tls.server_cert), str(tls.server_key), str(port_file)],
        base_environment(), log_dir / "chat-standin.log")
    try:
        wait_until(lambda: port_file.exists() and port_file.read_text().strip(), 30, "the chat stand-in's port")
        llm = LLMSettings(api_key=Secret("sk-ant-bench"), model=DEFAULT_LLM_MODEL,
                          base_url=f"https://127.0.0.1:{port_file.read_text().strip()}")
        started = time.monotonic()
        before = _summary(_chat(llm, str(tls.ca_cert), caching=False))
        after = _summary(_chat(llm, str(tls.ca_cert), caching=True))
    finally:
        stop_processes([standin])
    prefix_tokens = len(json.dumps([tools(), system_blocks({})], separators=(",", ":"))) // 4
    return {"model": DEFAULT_LLM_MODEL, "turns": len(USER_TURNS), "stable_prefix_tokens_approx": prefix_tokens,
            "before": before, "after": after,
            "after_to_before": round(after["microusd"] / before["microusd"], 3) if before["microusd"] else None,
            "seconds": round(time.monotonic() - started, 2)}
