"""The "Store step outputs" switch in a real browser, over TLS, with JavaScript off."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.test_browser_accounts import new_email, path_of, sign_up
from tests.e2e.test_browser_automations import add_step


def test_a_client_turns_on_storing_outputs_without_javascript_and_the_automation_page_says_so(
    no_script_page, owner, live_stack
):
    page = no_script_page
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    page.goto("/automations/new")
    switch = page.get_by_label("Store step outputs")
    expect(switch).to_be_visible()
    assert not switch.is_checked()
    expect(page.get_by_text("the same keys as your credentials")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Daily note")
    page.get_by_label("Store step outputs").check()
    add_step(page, "llm.summarise")
    # The switch survived the form's round trip through the server.
    assert page.get_by_label("Store step outputs").is_checked()
    page.locator("#steps-0-value-text").fill("What happened today.")
    page.get_by_role("button", name="Save automation").click()

    assert re.fullmatch(r"/automations/[0-9a-f-]{36}", path_of(page))
    automation_id = path_of(page).rsplit("/", 1)[1]
    assert owner.execute("SELECT store_outputs FROM automations WHERE automation_id = %s",
                         [automation_id]).fetchone() == (True,)
    expect(page.get_by_text("Stored, encrypted like your credentials, and shown on each run's page")).to_be_visible()

    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Store step outputs").is_checked()
    page.get_by_label("Store step outputs").uncheck()
    page.get_by_role("button", name="Save automation").click()
    assert path_of(page) == f"/automations/{automation_id}"
    assert owner.execute("SELECT store_outputs FROM automations WHERE automation_id = %s",
                         [automation_id]).fetchone() == (False,)
    expect(page.get_by_text("Not stored: they pass from step to step in memory")).to_be_visible()
