"""The chat's committed catalog description is the one the catalog gives."""

from __future__ import annotations

from agent_service.chat.prompt import CHAT_PROMPT_VERSION, describe_catalog, prompt_path


def test_the_committed_catalog_description_matches_the_catalog():
    committed = prompt_path("catalog.md").read_text(encoding="utf-8")
    assert committed == describe_catalog(), (
        f"the catalog changed: run `python -m agent_service.chat.prompt` (prompt {CHAT_PROMPT_VERSION})")


def test_the_chat_is_told_how_to_write_text_with_fields_and_each_triggers_fields():
    from agent_service.chat.prompt import system_prompt

    prompt = system_prompt()
    assert "{{ steps.2.text }}" in prompt
    assert "`schedule`" in prompt and "`trigger.scheduled_for`" in prompt


def test_a_proposal_with_text_fields_is_checked_like_a_hand_built_one():
    from agent_service.chat.proposal import check_proposal

    steps = [{"capability": "gmail.search", "input": {"query": "subject:invoice"}},
             {"capability": "slack.post_message", "input": {"channel": "#accounts",
                                                             "text": "From {{ steps.1.messages.1.sender }}"}}]
    good = check_proposal({"message": "Here it is.", "automation": {"name": "Alerts", "steps": steps}})
    assert good.automation is not None and not good.problems
    steps[1]["input"]["text"] = "From {{ steps.1.messages.1.from }}"
    bad = check_proposal({"message": "Here it is.", "automation": {"name": "Alerts", "steps": steps}})
    assert bad.automation is None
    assert any("has no field from; its fields are id, thread_id, sender, subject, date" in p for p in bad.problems)
