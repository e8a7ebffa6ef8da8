"""The builder's field picker in a real browser with JavaScript off: open the list, press a field, save."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.test_browser_accounts import new_email, path_of, sign_up
from tests.e2e.test_browser_automations import add_step


def test_a_client_inserts_fields_from_the_picker_without_javascript_and_saves_the_text(no_script_page, owner,
                                                                                        live_stack):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations/new")
    page.get_by_label("Name", exact=True).fill("Invoice alert")
    add_step(page, "gmail.search")
    page.locator("#steps-0-value-query").fill("subject:invoice")
    add_step(page, "slack.post_message")
    page.locator("#steps-1-value-channel").fill("#accounts")
    page.locator("#steps-1-value-text").fill("New invoice from")

    step = page.get_by_role("group", name="Step 2: Post to Slack")
    step.get_by_text("Insert a field into text").click()  # <details> opens without JavaScript
    picker = step.locator("details.field-picker").filter(has_text="Insert a field into text")
    expect(picker.get_by_text("Step 1 (Search emails): first of messages: sender")).to_be_visible()
    expect(picker.get_by_text("(list)").first).to_be_visible()
    picker.get_by_role("button", name="{{ steps.1.messages.1.sender }}").click()

    assert page.locator("#steps-1-value-text").input_value() == "New invoice from {{ steps.1.messages.1.sender }}"
    assert page.locator("#steps-0-value-query").input_value() == "subject:invoice"  # the round trip kept it
    page.locator("#steps-1-value-text").fill("From {{ steps.1.messages.1.sendr }}")
    page.get_by_role("button", name="Save automation").click()
    expect(page.get_by_text("has no field sendr; its fields are id, thread_id, sender, subject, date.")
           ).to_be_visible()
    page.locator("#steps-1-value-text").fill("From {{ steps.1.messages.1.sender }}")
    page.get_by_role("button", name="Save automation").click()
    assert re.fullmatch(r"/automations/[0-9a-f-]{36}", path_of(page))
    steps = owner.execute("SELECT steps FROM automations WHERE automation_id = %s",
                          [path_of(page).rsplit("/", 1)[1]]).fetchone()[0]
    assert steps[1]["input"]["text"] == "From {{ steps.1.messages.1.sender }}"


def test_a_client_tests_steps_without_javascript_a_write_is_only_shown_and_a_condition_worked_out(
        no_script_page, owner, live_stack):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations/new")
    page.get_by_label("Name", exact=True).fill("Urgent mail")
    add_step(page, "llm.summarise")
    page.locator("#steps-0-value-text").fill("Write one line about urgent invoices.")
    add_step(page, "condition.continue_if")
    page.locator("#steps-1-value-value").fill("{{ steps.1.text }}")
    page.locator("#steps-1-value-operator").select_option("contains")
    page.locator("#steps-1-value-compare_to").fill("urgent")
    add_step(page, "slack.post_message")
    page.locator("#steps-2-value-channel").fill("#urgent")
    page.locator("#steps-2-value-text").fill("Heads up: {{ steps.1.text }}")

    page.get_by_role("button", name="Show what this step would send").last.click()  # shows its sample fields
    page.get_by_label("Sample for {{ steps.1.text }}").last.fill("An urgent invoice from ACME")
    page.get_by_role("button", name="Show what this step would send").last.click()
    result = page.get_by_role("status", name="Test of step 3")
    expect(result).to_contain_text("This step writes, so a test never runs it.")
    expect(result).to_contain_text('"text": "Heads up: An urgent invoice from ACME"')

    page.get_by_label("Sample for {{ steps.1.text }}").first.fill("Nothing much today")
    page.get_by_role("button", name="Test this step").click()
    expect(page.get_by_role("status", name="Test of step 2")).to_contain_text(
        "The condition does not hold: the run would stop here")
    assert owner.execute("SELECT count(*) FROM automations WHERE name = %s", ["Urgent mail"]).fetchone() == (0,)


def test_a_client_opens_a_starter_from_the_gallery_without_javascript_and_saves_it(no_script_page, owner,
                                                                                   live_stack):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations")
    page.get_by_role("link", name="Start from a ready-made one").click()
    assert path_of(page) == "/automations/gallery"
    page.get_by_role("link", name="Open “Big invoice alert” in the builder").click()
    expect(page.get_by_text("Starting from “Big invoice alert”")).to_be_visible()
    assert page.get_by_label("Name", exact=True).input_value() == "Big invoice alert"
    assert page.locator("#steps-2-value-operator").input_value() == "greater_than"
    text = page.locator("#steps-3-value-text").input_value()
    assert text.startswith("New invoice from {{ steps.1.messages.1.sender }}")
    page.get_by_role("button", name="Save automation").click()
    assert re.fullmatch(r"/automations/[0-9a-f-]{36}", path_of(page))
    steps = owner.execute("SELECT steps FROM automations WHERE automation_id = %s",
                          [path_of(page).rsplit("/", 1)[1]]).fetchone()[0]
    assert [s["capability"] for s in steps] == ["gmail.search", "llm.extract", "condition.continue_if",
                                                 "slack.post_message"]
