"""The builder's text with fields, without JavaScript: a picker per step, checked on save, renumbered on remove."""

from __future__ import annotations

import html
import re

from tests.integration.test_automations_pages import count, digest_form, field_is_marked_invalid, press, text_of


def picker_buttons(body: str, step: int, name: str) -> dict[str, str]:
    """The insert buttons of one input's picker: the reference each inserts, and its label with type."""
    found = re.findall(r'<button type="submit" name="action" value="insert:' + str(step) + ":" + name
                       + r':([^"]+)" class="link">[^<]*</button>\s*([^<]*)<span class="type">\(([^)]*)\)', body)
    return {path: f"{label.strip()} ({kind})" for path, label, kind in found}


def test_the_picker_lists_the_trigger_and_earlier_steps_fields_with_types_and_no_later_ones(signed_up):
    visitor, _ = signed_up
    form = digest_form(visitor)
    body = text_of(press(visitor, form, "add_step", new_capability="gmail.create_draft"))
    assert picker_buttons(body, 3, "body_text")["steps.3.ts"] == "Step 3 (Post to Slack): ts (text)"
    buttons = picker_buttons(body, 2, "text")
    assert buttons["trigger.started_at"] == "Trigger: started at (text)"
    assert buttons["steps.1.messages"] == "Step 1 (Search emails): messages (list)"
    assert buttons["steps.1.messages.1.sender"] == "Step 1 (Search emails): first of messages: sender (text)"
    assert buttons["steps.2.text"] == "Step 2 (Summarise with Claude): text (text)"
    assert not any(path.startswith("steps.3") for path in buttons)
    assert not any(path.startswith(("steps.2", "steps.3")) for path in picker_buttons(body, 1, "text"))
    assert picker_buttons(body, 0, "max_results") == {}  # a number takes no text


def test_pressing_a_field_inserts_it_and_the_automation_saves_with_it(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "", "steps-2-value-text": "From"}
    page = press(visitor, form, "insert:2:text:steps.1.messages.1.sender")
    assert page.status_code == 200
    value = re.search(r'<textarea id="steps-2-value-text"[^>]*>([^<]*)</textarea>', page.get_data(as_text=True))
    assert html.unescape(value.group(1)) == "From {{ steps.1.messages.1.sender }}"
    form["steps-2-value-text"] = "From {{ steps.1.messages.1.sender }}: {{ steps.2.text }}"
    saved = press(visitor, form, "save")
    assert saved.status_code == 303, text_of(saved)
    stored = owner_conn.execute("SELECT steps FROM automations").fetchone()[0]
    assert stored[2]["input"]["text"] == "From {{ steps.1.messages.1.sender }}: {{ steps.2.text }}"


def test_a_crafted_insert_of_a_field_not_available_there_is_refused(signed_up):
    visitor, _ = signed_up
    form = digest_form(visitor)
    page = press(visitor, form, "insert:1:text:steps.3.ts")
    assert page.status_code == 400
    assert "That field is not available at this step" in text_of(page)


def test_an_unknown_field_is_a_form_error_naming_it_and_saves_nothing(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "",
            "steps-2-value-text": "{{ steps.2.summary }} from {{ trigger.email.from }}"}
    response = press(visitor, form, "save")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    text = html.unescape(body)
    assert ("{{ steps.2.summary }}: step 2 (Summarise with Claude) has no field summary; "
            "its fields are text.") in text
    assert "{{ trigger.email.from }}: a manual trigger has no field email; its fields are started_at." in text
    assert field_is_marked_invalid(body, "steps-2-value-text")
    assert count(owner_conn, "automations") == 0


def test_removing_a_step_renumbers_the_fields_in_texts_and_marks_those_of_the_removed_step(signed_up):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "",
            "steps-2-value-text": "{{ steps.1.messages.1.sender }} / {{steps.2.text}}"}
    page = press(visitor, form, "remove:0")
    value = re.search(r'<textarea id="steps-1-value-text"[^>]*>([^<]*)</textarea>', page.get_data(as_text=True))
    assert html.unescape(value.group(1)) == "{{ steps.removed.messages.1.sender }} / {{steps.1.text}}"


def test_a_continue_only_if_step_is_built_with_selects_and_a_field_and_saved(signed_up, owner_conn):
    visitor, _ = signed_up
    form = digest_form(visitor)
    page = press(visitor, form, "add_step", new_capability="condition.continue_if")
    body = page.get_data(as_text=True)
    assert '<option value="greater_than">greater than</option>' in body
    assert '<option value="number">number</option>' in body
    assert "insert:3:value:steps.2.text" in body
    form.update({"steps-3-capability": "condition.continue_if", "steps-3-value-value": "{{ steps.2.text }}",
                 "steps-3-value-operator": "contains", "steps-3-value-compare_to": "urgent",
                 "steps-3-value-compare_as": ""})
    refused = press(visitor, form, "save")
    assert refused.status_code == 400
    assert "A “continue only if” step needs a step after it" in text_of(refused)
    press(visitor, form, "add_step", new_capability="slack.post_message")
    form.update({"steps-4-capability": "slack.post_message", "steps-4-value-channel": "#urgent",
                 "steps-4-value-text": "Urgent: {{ steps.2.text }}"})
    saved = press(visitor, form, "save")
    assert saved.status_code == 303, text_of(saved)
    steps = owner_conn.execute("SELECT steps FROM automations").fetchone()[0]
    assert steps[3] == {"capability": "condition.continue_if",
                        "input": {"value": "{{ steps.2.text }}", "operator": "contains", "compare_to": "urgent"}}


def test_a_new_step_can_go_before_an_existing_one_and_later_fields_move_up(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "", "steps-2-value-text": "Digest: {{ steps.2.text }}"}
    assert '<option value="1">Before step 2</option>' in press(visitor, form, "save", name="").get_data(as_text=True)
    body = press(visitor, form, "add_step", new_capability="condition.continue_if", new_position="1") \
        .get_data(as_text=True)
    assert re.search(r'name="steps-1-capability" value="condition.continue_if"', body)
    assert re.search(r'name="steps-2-capability" value="llm.summarise"', body)
    assert "Digest: {{ steps.3.text }}" in html.unescape(body)  # Slack, now step 4, still reads the summary
    assert '<option value="steps.0.messages" selected>' in body  # the summary still reads step 1

    body = press(visitor, form, "add_step", new_capability="condition.continue_if", new_position="2") \
        .get_data(as_text=True)
    assert re.search(r'name="steps-2-capability" value="condition.continue_if"', body)
    form.update({"steps-3-capability": "slack.post_message", "steps-3-value-channel": "#support",
                 "steps-3-value-text": "Digest: {{ steps.2.text }}",
                 "steps-2-capability": "condition.continue_if", "steps-2-value-value": "{{ steps.2.text }}",
                 "steps-2-value-operator": "is_not_empty", "steps-2-value-compare_to": "",
                 "steps-2-value-compare_as": ""})
    saved = press(visitor, form, "save")
    assert saved.status_code == 303, text_of(saved)
    steps = owner_conn.execute("SELECT steps FROM automations").fetchone()[0]
    assert [s["capability"] for s in steps] == ["gmail.search", "llm.summarise", "condition.continue_if",
                                                 "slack.post_message"]


def test_a_condition_s_operator_is_picked_not_taken_from_a_step_and_shows_in_words(signed_up):
    visitor, _ = signed_up
    form = digest_form(visitor)
    body = press(visitor, form, "add_step", new_capability="condition.continue_if", new_position="2") \
        .get_data(as_text=True)
    assert 'name="steps-2-ref-value"' in body  # the value may come from a step
    assert 'name="steps-2-ref-operator"' not in body and 'name="steps-2-ref-compare_as"' not in body
    form.update({"steps-3-capability": "slack.post_message", "steps-3-value-channel": "#support",
                 "steps-3-value-text": "", "steps-3-ref-text": "steps.1.text",
                 "steps-2-capability": "condition.continue_if", "steps-2-value-value": "{{ steps.2.text }}",
                 "steps-2-value-operator": "is_not_empty", "steps-2-value-compare_to": "",
                 "steps-2-value-compare_as": ""})
    saved = press(visitor, form, "save")
    assert saved.status_code == 303, text_of(saved)
    page = text_of(visitor.get(saved.headers["Location"]))
    assert "is not empty" in page and "is_not_empty" not in page


def test_a_text_over_its_limit_says_how_many_characters_it_may_hold(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "steps-2-ref-text": "", "steps-2-value-text": "A" * 40_001}
    refused = press(visitor, form, "save")
    assert refused.status_code == 400
    assert "Write at most 40,000 characters." in text_of(refused)
    assert "Length must be between" not in text_of(refused)
    assert count(owner_conn, "automations") == 0
