"""Automations are validated against the catalog; bad ones say exactly which field is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

from shared.automations import InvalidAutomation, load_automation, next_fire_time, resolve_step_input

DIGEST = {
    "name": "Morning digest",
    "trigger": {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/London"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "is:unread newer_than:1d from:customers"}},
        {"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}}},
        {"capability": "slack.post_message", "input": {"channel": "#support", "text": {"$ref": "steps.1.text"}}},
    ],
}


def errors_of(definition) -> dict:
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(definition)
    return raised.value.messages


def test_the_morning_digest_is_valid_and_gets_defaults():
    loaded = load_automation(DIGEST)
    assert loaded["store_outputs"] is False
    assert [s["capability"] for s in loaded["steps"]] == ["gmail.search", "llm.summarise", "slack.post_message"]


def test_a_manual_trigger_is_the_default():
    loaded = load_automation({"name": "x", "steps": [{"capability": "sheets.read",
                                                      "input": {"spreadsheet_id": "1AbCdEfGhIjK", "range": "A1:B2"}}]})
    assert loaded["trigger"] == {"kind": "manual"}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["steps"].append({"capability": "gmail.delete_all"}), ["steps", 3, "capability"]),
        (lambda d: d["steps"][0]["input"].pop("query"), ["steps", 0, "input", "query"]),
        (lambda d: d["steps"][0]["input"].update(max_results=1000), ["steps", 0, "input", "max_results"]),
        (lambda d: d["steps"][0]["input"].update(spy=True), ["steps", 0, "input", "spy"]),
        (lambda d: d["steps"][2]["input"].update(text={"$ref": "steps.2.text"}), ["steps", 2, "input", "text"]),
        (lambda d: d["steps"][2]["input"].update(text={"$ref": "steps.0.nonexistent"}), ["steps", 2, "input", "text"]),
        (lambda d: d["steps"][1]["input"].update(text={"$ref": "$.env.SECRET"}), ["steps", 1, "input", "text"]),
        (lambda d: d["trigger"].update(cron="every morning"), ["trigger", "cron"]),
        (lambda d: d["trigger"].update(cron="* * * * *"), ["trigger", "cron"]),
        (lambda d: d["trigger"].update(timezone="Mars/Olympus"), ["trigger", "timezone"]),
        (lambda d: d.update(name=""), ["name"]),
        (lambda d: d.update(owner="someone-else"), ["owner"]),
        (lambda d: d.update(steps=[]), ["steps"]),
    ],
)
def test_an_invalid_automation_names_the_field(change, path):
    import copy

    definition = copy.deepcopy(DIGEST)
    change(definition)
    node = errors_of(definition)
    for key in path:
        assert key in node, (path, node)
        node = node[key]


def test_a_schedule_fires_in_its_own_time_zone():
    trigger = DIGEST["trigger"]
    fire = next_fire_time(trigger, datetime(2026, 7, 6, 6, 0, tzinfo=UTC))  # a Monday, 07:00 in London
    assert fire.astimezone(UTC) == datetime(2026, 7, 6, 7, 0, tzinfo=UTC)  # 08:00 BST
    winter = next_fire_time(trigger, datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    assert winter.astimezone(UTC) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 08:00 GMT


def test_references_resolve_to_earlier_outputs_and_are_validated_then():
    step = DIGEST["steps"][2]
    outputs = [{"messages": []}, {"text": "Three customers wrote."}]
    assert resolve_step_input(step, outputs) == {"channel": "#support", "text": "Three customers wrote."}
    with pytest.raises(ValidationError):
        resolve_step_input(step, [{"messages": []}, {"text": ""}])
