"""The "continue only if" comparisons: text, numbers and dates, and what saving refuses with how to fix it."""

from __future__ import annotations

import pytest

from shared.automations import InvalidAutomation, load_automation
from shared.automations.conditions import evaluate


@pytest.mark.parametrize(
    ("value", "operator", "compare_to", "compare_as", "passed"),
    [
        ("Invoice", "equals", " invoice ", "text", True),
        ("Invoice 42", "contains", "INVOICE", "text", True),
        ("Receipt", "not_contains", "invoice", "text", True),
        ("", "is_empty", "", "text", True),
        ("  ", "is_empty", "", "text", True),
        ("x", "is_not_empty", "", "text", True),
        ("€1,250.50", "greater_than", "500", "number", True),
        ("499.99 EUR", "greater_than", "500", "number", False),
        ("-3", "less_than", "0", "number", True),
        ("500", "equals", "500.00", "number", True),
        ("about 500", "greater_than", "400", "number", False),  # never guessed at
        ("{{ steps.1.text }}", "greater_than", "1", "number", False),  # a value is data, not a field
        ("2026-03-02", "greater_than", "2026-03-01", "date", True),
        ("2026-03-02T09:00:00+01:00", "less_than", "2026-03-02T08:30:00Z", "date", True),
        ("Sat, 28 Nov 2026 08:00:00 +0000", "equals", "2026-11-28", "date", True),
        ("not a date", "less_than", "2026-01-01", "date", False),
        ("1000", "greater_than", "999", "text", False),  # as text, "1000" < "999"
    ],
)
def test_a_comparison_reads_both_sides_as_the_chosen_type(value, operator, compare_to, compare_as, passed):
    assert evaluate(value, operator, compare_to, compare_as).passed is passed


def test_a_side_that_is_not_of_the_type_is_said_so_not_guessed():
    assert evaluate("n/a", "greater_than", "5", "number").unreadable


def condition_steps(condition_input: dict, *, last: bool = False) -> dict:
    steps = [{"capability": "llm.extract", "input": {"text": "x", "fields": ["amount"]}},
             {"capability": "condition.continue_if", "input": condition_input}]
    if not last:
        steps.append({"capability": "slack.post_message", "input": {"channel": "#accounts", "text": "Big one"}})
    return {"name": "Big invoices", "steps": steps}


def test_a_condition_on_a_field_saves():
    load_automation(condition_steps({"value": "{{ steps.1.values.amount }}", "operator": "greater_than",
                                     "compare_to": "500", "compare_as": "number"}))


@pytest.mark.parametrize(
    ("condition_input", "field", "message"),
    [
        ({"value": "{{ steps.1.values.amount }}", "operator": "greater_than", "compare_as": "number"},
         "compare_to", "Enter what to compare with, like 500"),
        ({"value": "{{ steps.1.values.amount }}", "operator": "greater_than", "compare_to": "five hundred",
          "compare_as": "number"}, "compare_to", "Not a number: write it like 500"),
        ({"value": "x", "operator": "less_than", "compare_to": "next week", "compare_as": "date"},
         "compare_to", "Not a date: write it like 2026-03-02"),
        ({"value": "x", "operator": "is_empty", "compare_to": "y"}, "compare_to", "leave this empty"),
        ({"value": "x", "operator": "contains", "compare_to": "5", "compare_as": "number"}, "operator",
         "Only text can contain text"),
        ({"value": "x", "operator": "bigger"}, "operator", "Must be one of"),
        ({"value": "{{ steps.1.values.total }}", "operator": "is_empty"}, "value", "has no field total"),
    ],
)
def test_a_condition_that_cannot_work_is_refused_saying_how_to_fix_it(condition_input, field, message):
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(condition_steps(condition_input))
    messages = raised.value.messages["steps"][1]["input"][field]
    assert any(message in text for text in messages), messages


def test_a_condition_as_the_last_step_is_refused():
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(condition_steps({"value": "x", "operator": "is_empty"}, last=True))
    assert "needs a step after it" in raised.value.messages["steps"][1][0]
