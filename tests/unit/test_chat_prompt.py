"""The chat's committed catalog description is the one the catalog gives."""

from __future__ import annotations

from agent_service.chat.prompt import CHAT_PROMPT_VERSION, describe_catalog, prompt_path


def test_the_committed_catalog_description_matches_the_catalog():
    committed = prompt_path("catalog.md").read_text(encoding="utf-8")
    assert committed == describe_catalog(), (
        f"the catalog changed: run `python -m agent_service.chat.prompt` (prompt {CHAT_PROMPT_VERSION})")
