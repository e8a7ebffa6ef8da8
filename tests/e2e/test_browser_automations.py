"""Building, enabling and running an automation in a real browser, over TLS, with JavaScript off."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for
from tests.e2e.test_browser_accounts import new_email, path_of, sign_up
from tests.run_fixtures import DIGEST


def add_step(page, capability: str) -> None:
    page.get_by_label("What the step does").select_option(capability)
    page.get_by_role("button", name="Add step").click()


def test_a_client_builds_the_digest_without_javascript_enables_it_and_runs_it(no_script_page, owner, live_stack):
    page = no_script_page
    email = new_email()
    sign_up(page, email, owner_dsn=live_stack.database.owner_dsn)
    page.get_by_role("link", name="New automation").click()
    assert path_of(page) == "/automations/new"

    page.get_by_label("Name", exact=True).fill("Morning digest")
    add_step(page, "gmail.search")
    page.locator("#steps-0-value-query").fill("is:unread newer_than:1d")
    add_step(page, "llm.summarise")
    expect(page.get_by_role("group", name="Step 1: Search emails")).to_be_visible()
    page.locator("#steps-1-ref-text").select_option("steps.0.messages")
    add_step(page, "slack.post_message")
    page.locator("#steps-2-value-channel").fill("#support")
    page.locator("#steps-2-ref-text").select_option("steps.1.text")
    # What was typed before each "Add step" survived the round trips.
    assert page.locator("#steps-0-value-query").input_value() == "is:unread newer_than:1d"
    assert page.locator("#steps-1-ref-text").input_value() == "steps.0.messages"
    page.get_by_role("button", name="Save automation").click()

    assert re.fullmatch(r"/automations/[0-9a-f-]{36}", path_of(page))
    expect(page.get_by_text("The automation was saved.")).to_be_visible()
    automation_id = path_of(page).rsplit("/", 1)[1]
    saved = owner.execute("SELECT version, steps, status FROM automations WHERE automation_id = %s",
                          [automation_id]).fetchone()
    assert saved == (1, DIGEST["steps"], "draft")
    expect(page.get_by_role("heading", name="Access it needs")).to_be_visible()
    expect(page.get_by_text("https://www.googleapis.com/auth/gmail.readonly")).to_be_visible()

    # Enabling checks what it needs first: each missing connection is named with a link, and nothing changes.
    page.get_by_role("button", name="Enable", exact=True).click()
    needed = page.get_by_role("list", name="Connections it needs")
    expect(needed).to_contain_text("Google Workspace: not connected")
    expect(needed).to_contain_text("Slack: not connected")
    assert owner.execute("SELECT status FROM automations WHERE automation_id = %s",
                         [automation_id]).fetchone() == ("draft",)
    needed.get_by_role("link", name="connect Slack").click()
    assert page.url.endswith("#need-slack")
    client_id = owner.execute("SELECT client_id FROM users WHERE email = %s", [email]).fetchone()[0]
    for provider, scope in (("google", "https://www.googleapis.com/auth/gmail.readonly"), ("slack", "chat:write")):
        owner.execute("INSERT INTO connections (client_id, provider, auth_kind, status, scopes_granted) "
                      "VALUES (%s, %s, 'oauth2', 'active', %s)", [client_id, provider, [scope]])
    page.get_by_role("button", name="Enable", exact=True).click()
    expect(page.get_by_text("The automation is enabled.")).to_be_visible()
    assert owner.execute("SELECT status FROM automations WHERE automation_id = %s",
                         [automation_id]).fetchone() == ("enabled",)

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("The run is queued.")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    assert path_of(page) == "/runs"
    row = page.get_by_role("row").filter(has_text="Morning digest")
    assert row.count() == 1
    expect(row.get_by_text("queued")).to_be_visible()
    expect(row.get_by_text("manual")).to_be_visible()
    run_id = owner.execute("SELECT run_id FROM runs WHERE automation_id = %s", [automation_id]).fetchone()[0]
    row.get_by_role("link").first.click()
    assert path_of(page) == f"/runs/{run_id}"
    expect(page.get_by_role("cell", name="gmail.search")).to_be_visible()


def test_a_webhook_address_shown_once_starts_a_run_over_tls_and_never_reaches_a_log(no_script_page, owner,
                                                                                     live_stack):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations/new")
    page.get_by_label("Name", exact=True).fill("Form to Slack")
    page.get_by_label("When its secret web address is called").check()
    add_step(page, "llm.summarise")
    page.locator("#steps-0-value-text").fill("A new form was submitted.")
    page.get_by_role("button", name="Save automation").click()
    address = page.locator("code.secret-url").inner_text()
    assert address.startswith(live_stack.intake_url + "/hooks/")
    secret = address.rsplit("/", 1)[1]
    page.get_by_role("button", name="Enable", exact=True).click()
    assert page.locator("code.secret-url").count() == 0  # shown once

    logged_before = live_stack.logs().count("/hooks/<secret>")
    answer = requests.post(address, data=b"ignored", verify=live_stack.ca_file, timeout=10)
    assert answer.status_code == 202
    assert owner.execute("SELECT trigger_kind FROM runs WHERE run_id = %s",
                         [answer.json()["run_id"]]).fetchone() == ("webhook",)
    assert requests.post(address + "x", verify=live_stack.ca_file, timeout=10).status_code == 404
    assert requests.get(address, verify=live_stack.ca_file, timeout=10).status_code == 405
    # Each of the three calls is logged (its path redacted) once the intake has written its line.
    logs = wait_for(lambda: (text := live_stack.logs()).count("/hooks/<secret>") >= logged_before + 3 and text)
    assert "/hooks/<secret>" in logs
    assert secret not in logs
