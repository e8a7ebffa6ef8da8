"""Choosing a "when something new arrives" trigger in a real browser with JavaScript off: its fields in the picker."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.test_browser_accounts import new_email, path_of, sign_up
from tests.e2e.test_browser_automations import add_step


def test_a_client_chooses_new_email_in_gmail_without_javascript_and_inserts_its_sender_from_the_picker(
        no_script_page, owner, live_stack):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations/new")
    page.get_by_label("Name", exact=True).fill("Invoice email alert")
    page.get_by_label("New email in Gmail").check()
    page.locator("#poll-gmail\\.new_email-query").fill("subject:invoice")
    page.get_by_label("Check for new items every (minutes)").fill("2")
    add_step(page, "slack.post_message")  # posts the form: the picker now knows the trigger
    page.locator("#steps-0-value-channel").fill("#accounts")
    page.locator("#steps-0-value-text").fill("Invoice from")

    step = page.get_by_role("group", name="Step 1: Post to Slack")
    step.get_by_text("Insert a field into text").click()  # <details> opens without JavaScript
    picker = step.locator("details.field-picker").filter(has_text="Insert a field into text")
    expect(picker.get_by_text("Trigger: email: from")).to_be_visible()
    expect(picker.get_by_text("Trigger: email: body text")).to_be_visible()
    picker.get_by_role("button", name="{{ trigger.email.from }}").click()
    assert page.locator("#steps-0-value-text").input_value() == "Invoice from {{ trigger.email.from }}"
    assert page.get_by_label("New email in Gmail").is_checked()

    page.get_by_role("button", name="Save automation").click()
    expect(page.locator(".field-error").filter(has_text="every 5 minutes at the finest")).to_be_visible()
    page.get_by_label("Check for new items every (minutes)").fill("15")
    page.get_by_role("button", name="Save automation").click()
    assert re.fullmatch(r"/automations/[0-9a-f-]{36}", path_of(page))
    expect(page.get_by_text("once for each new email in Gmail")).to_be_visible()
    trigger, steps = owner.execute("SELECT trigger, steps FROM automations WHERE automation_id = %s",
                                   [path_of(page).rsplit("/", 1)[1]]).fetchone()
    assert trigger == {"kind": "poll", "source": "gmail.new_email", "every_minutes": 15,
                       "options": {"query": "subject:invoice"}}
    assert steps[0]["input"]["text"] == "Invoice from {{ trigger.email.from }}"
