"""Text with fields: references are checked on save, filled in once at run time, and a value is only data."""

from __future__ import annotations

import copy

import pytest
from marshmallow import ValidationError

from shared.automations import InvalidAutomation, load_automation, resolve_step_input
from shared.automations import text_fields as tf

INVOICES = {
    "name": "Invoice alerts",
    "trigger": {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/London"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "subject:invoice newer_than:1d"}},
        {"capability": "llm.extract", "input": {"text": {"$ref": "steps.0.messages"}, "fields": ["amount", "vendor"]}},
        {"capability": "slack.post_message", "input": {
            "channel": "#accounts",
            "text": "New invoice from {{ steps.1.messages.1.sender }} ({{ steps.2.values.vendor }}): "
                    "{{ steps.2.values.amount }}, seen {{ trigger.scheduled_for }}"}},
    ],
}


def text_errors(text: str, *, trigger: dict | None = None) -> list[str]:
    definition = copy.deepcopy(INVOICES)
    if trigger is not None:
        definition["trigger"] = trigger
    definition["steps"][2]["input"]["text"] = text
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(definition)
    return raised.value.messages["steps"][2]["input"]["text"]


def test_the_invoice_alert_with_fields_is_valid_as_saved():
    loaded = load_automation(INVOICES)
    assert loaded["steps"][2]["input"]["text"] == INVOICES["steps"][2]["input"]["text"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{{ steps.2.value.amount }}",
         "step 2 (Extract fields with Claude) has no field value; its fields are values."),
        ("{{ steps.2.values.total }}", "values has no field total; its fields are amount, vendor."),
        ("{{ steps.3.text }}", "a step cannot use its own output"),
        ("{{ steps.4.text }}", "step 4 comes after this one"),
        ("{{ steps.0.text }}", "the step's number (from 1)"),
        ("{{ steps.1.messages.first.sender }}", "messages is a list: next comes an item's number"),
        ("{{ trigger.email.from }}",
         "a schedule trigger has no field email; its fields are started_at, scheduled_for."),
        ("{{ env.secret }}", "must start with trigger or steps"),
        ("{{ steps.1.messages | upper }}", "is not a field"),
        ("{{ ''.__class__ }}", "is not a field"),
        ("{% for x in y %}{{ x }}{% endfor %}", "{{ x }} must start with trigger or steps"),
        ("Hello {{ steps.1.messages", "has no closing }}"),
    ],
)
def test_an_unknown_or_malformed_field_is_an_error_naming_it_and_how_to_fix_it(text, named):
    messages = text_errors(text)
    assert any(named in message for message in messages), messages


def test_a_manual_trigger_has_no_schedule_slot():
    messages = text_errors("{{ trigger.scheduled_for }}", trigger={"kind": "manual"})
    assert messages == ["{{ trigger.scheduled_for }}: a manual trigger has no field scheduled_for; "
                        "its fields are started_at."]


def test_every_bad_field_of_a_text_is_named_not_only_the_first():
    assert len(text_errors("{{ steps.2.nope }} and {{ trigger.nope }}")) == 2


def test_fields_fill_in_once_and_a_providers_value_is_never_read_as_a_template():
    step = INVOICES["steps"][2]
    hostile = "{{ trigger.scheduled_for }} {% import os %} \\{{ steps.2.values.amount }} <script>"
    outputs = [{"messages": [{"id": "m1", "thread_id": "t1", "sender": hostile}]},
               {"values": {"amount": "{{ steps.1.messages.1.sender }}", "vendor": None}}]
    data = resolve_step_input(step, outputs, {"scheduled_for": "2026-01-05T08:00:00+00:00"})
    assert data["text"] == (f"New invoice from {hostile} (): {{{{ steps.1.messages.1.sender }}}}, "
                            "seen 2026-01-05T08:00:00+00:00")


def test_a_missing_item_or_key_fills_in_as_empty_text():
    step = INVOICES["steps"][2]
    data = resolve_step_input(step, [{"messages": []}, {"values": {}}], {})
    assert data["text"] == "New invoice from  (): , seen "


def test_values_become_text_plainly():
    assert tf.as_text(["a", 2, 3.5]) == "a, 2, 3.5"
    assert tf.as_text(True) == "yes"
    assert tf.as_text(None) == ""
    assert tf.as_text([{"id": "1"}]) == '[{"id": "1"}]'


def test_a_huge_value_is_cut_and_the_result_is_bounded():
    parsed = tf.parse("{{ steps.1.text }}" * 10)
    text = tf.render(parsed, trigger={}, outputs=[{"text": "x" * 1_000_000}])
    assert len(text) == tf.MAX_RENDERED_CHARS
    assert len(tf.as_text("y" * 1_000_000)) == tf.MAX_VALUE_CHARS


def test_what_all_texts_of_one_input_fill_in_to_is_bounded_too():
    """1,000 sheet rows of cells each naming a 20,000-character output filled in to 1 GB before the schema saw it
    (each text was bounded, their sum was not): now the step's input is refused past a million characters."""
    step = {"capability": "sheets.append", "input": {"spreadsheet_id": "1AbCdEfGhIjK", "range": "A1",
                                                     "rows": [["{{ steps.1.text }}"] * 50] * 1000}}
    with pytest.raises(ValidationError) as refused:
        resolve_step_input(step, [{"text": "x" * tf.MAX_VALUE_CHARS}])
    assert "1,000,000 characters" in str(refused.value.messages)
    small = resolve_step_input({**step, "input": {**step["input"], "rows": [["{{ steps.1.text }}"] * 50] * 10}},
                               [{"text": "x" * 1000}])
    assert sum(len(cell) for row in small["rows"] for cell in row) == 500_000


def test_a_tests_samples_are_bounded_across_the_whole_input_too():
    rows = [["{{ steps.1.text }}"] * 50] * 1000
    with pytest.raises(tf.TextFieldError, match="1,000,000 characters"):
        tf.render_samples({"rows": rows}, {"steps.1.text": "x" * 5000})
    assert tf.render_samples({"rows": rows[:2]}, {"steps.1.text": "ab"})["rows"][1][49] == "ab"


def test_a_filled_in_text_still_meets_the_step_schema():
    step = {"capability": "slack.post_message", "input": {"channel": "{{ steps.1.text }}", "text": "hi"}}
    with pytest.raises(ValidationError):
        resolve_step_input(step, [{"text": "not a channel"}])
    assert resolve_step_input(step, [{"text": "#sales"}])["channel"] == "#sales"


def test_size_limits_are_refused_on_save():
    with pytest.raises(tf.TextFieldError, match="at most 50 fields"):
        tf.parse("{{ steps.1.text }}" * (tf.MAX_REFERENCES + 1))
    with pytest.raises(tf.TextFieldError, match="characters"):
        tf.parse("x" * (tf.MAX_TEXT_CHARS + 1))


def test_an_escaped_brace_is_literal_and_checked_as_typed():
    definition = copy.deepcopy(INVOICES)
    definition["steps"][2]["input"]["channel"] = "\\{{ not a channel"
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(definition)
    assert "channel" in raised.value.messages["steps"][2]["input"]


def test_fields_inside_lists_and_objects_are_filled_in():
    step = {"capability": "sheets.append", "input": {"spreadsheet_id": "1AbCdEfGhIjK", "range": "A1",
                                                     "rows": [["{{ steps.1.text }}", 5, "{{ trigger.started_at }}"]]}}
    definition = {"name": "x", "steps": [{"capability": "llm.summarise", "input": {"text": "hi"}}, step]}
    load_automation(definition)
    data = resolve_step_input(step, [{"text": "sum"}], {"started_at": "now"})
    assert data["rows"] == [["sum", 5, "now"]]


def test_the_picker_lists_nested_fields_with_their_types():
    from shared.catalog import CAPABILITIES

    available = tf.fields_of(CAPABILITIES["gmail.search"].output_schema(), "steps.1", "Step 1")
    written = {f.written: f.type for f in available}
    assert written["{{ steps.1.messages }}"] == "list"
    assert written["{{ steps.1.messages.1.sender }}"] == "text"
