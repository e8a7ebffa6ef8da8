"""The builder's "when something new arrives" triggers, without JavaScript: chosen by a radio, their options
checked on save with a message that says how to fix them, their item fields offered by the picker, and the
read-only scope they need shown before enabling."""

from __future__ import annotations

from tests.integration.test_automations_pages import field_is_marked_invalid, press, text_of
from tests.integration.test_text_fields_builder import picker_buttons
from tests.run_fixtures import G


def sheet_form(visitor, **overrides):
    form = {"name": "New lead to Slack", "trigger_kind": "poll:sheets.new_row", "cron": "", "timezone": "UTC",
            "every_minutes": "10", "poll-sheets.new_row-spreadsheet_id": "1AbCdEfGhIjKlMnOpQrStUv",
            "poll-sheets.new_row-sheet": "Leads", "poll-gmail.new_email-query": "", **overrides}
    page = press(visitor, form, "add_step", new_capability="slack.post_message")
    assert page.status_code == 200
    form.update({"steps-0-capability": "slack.post_message", "steps-0-value-channel": "#sales",
                 "steps-0-value-text": "New lead {{ trigger.row.full_name }} in row {{ trigger.row_number }}"})
    return form, text_of(page)


def test_choosing_new_row_in_a_sheet_offers_its_fields_in_the_picker_and_saves_the_poll(signed_up, owner_conn):
    visitor, _ = signed_up
    form, body = sheet_form(visitor)
    assert 'value="poll:sheets.new_row" checked' in body
    buttons = picker_buttons(body, 0, "text")
    assert buttons["trigger.row_number"] == "Trigger: row number (number)"
    assert buttons["trigger.row"].startswith("Trigger: row (")
    email = picker_buttons(text_of(press(visitor, {**form, "trigger_kind": "poll:gmail.new_email"}, "add_step",
                                         new_capability="")), 0, "text")
    assert email["trigger.email.from"] == "Trigger: email: from (text)"
    assert "trigger.row_number" not in email

    saved = press(visitor, form, "save")

    assert saved.status_code == 303, text_of(saved)
    assert owner_conn.execute("SELECT trigger FROM automations").fetchone()[0] == {
        "kind": "poll", "source": "sheets.new_row", "every_minutes": 10,
        "options": {"spreadsheet_id": "1AbCdEfGhIjKlMnOpQrStUv", "sheet": "Leads"}}
    page = text_of(visitor.get(saved.headers["Location"]))
    assert G + "spreadsheets.readonly" in page


def test_checking_more_often_than_every_five_minutes_is_a_message_that_says_how_to_fix_it(signed_up, owner_conn):
    visitor, _ = signed_up
    form, _ = sheet_form(visitor, every_minutes="2")
    response = press(visitor, form, "save")
    body = text_of(response)
    assert response.status_code == 400
    assert "every 5 minutes at the finest" in body and "like 15" in body
    assert field_is_marked_invalid(body, "every_minutes")
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)


def test_a_sheet_poll_without_its_spreadsheet_is_a_message_next_to_that_option(signed_up, owner_conn):
    visitor, _ = signed_up
    form, _ = sheet_form(visitor)
    form["poll-sheets.new_row-spreadsheet_id"] = ""
    response = press(visitor, form, "save")
    body = text_of(response)
    assert response.status_code == 400
    assert field_is_marked_invalid(body, "poll-sheets.new_row-spreadsheet_id")
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)


def test_the_automation_page_says_how_many_new_items_wait_for_the_next_polls(signed_up, owner_conn):
    visitor, _ = signed_up
    form, _ = sheet_form(visitor)
    saved = press(visitor, form, "save")
    automation_id, client_id = owner_conn.execute("SELECT automation_id, client_id FROM automations").fetchone()
    page = text_of(visitor.get(saved.headers["Location"]))
    assert "once for each new row in a Google Sheet (checked every 10 minutes)" in page
    assert "waiting" not in page
    assert "Run now" not in page  # its steps need a new row's fields
    owner_conn.execute("INSERT INTO poll_seen (client_id, automation_id, item_key, started_at) "
                       "SELECT %s, %s, 'row:' || n, CASE WHEN n <= 25 THEN now() END "
                       "FROM generate_series(1, 72) n", [client_id, automation_id])
    page = text_of(visitor.get(saved.headers["Location"]))
    assert "47 new items waiting; they will run over the next polls" in page


def test_an_interval_of_digits_python_cannot_read_as_a_number_is_a_message_not_a_server_error(signed_up, owner_conn):
    visitor, _ = signed_up
    form, _ = sheet_form(visitor)
    for every in ("²", "1" * 5000):  # str.isdigit() says yes to both; int() refuses both
        response = press(visitor, {**form, "every_minutes": every}, "save")
        assert response.status_code == 400, every[:10]
        assert field_is_marked_invalid(text_of(response), "every_minutes")
    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)

def test_new_email_in_outlook_is_offered_with_its_search_and_the_gmail_email_fields_and_needs_mail_read(
        signed_up, owner_conn):
    visitor, _ = signed_up
    form = {"name": "Outlook invoices", "trigger_kind": "poll:outlook.new_email", "cron": "", "timezone": "UTC",
            "every_minutes": "15", "poll-outlook.new_email-query": "from:billing invoice"}
    page = press(visitor, form, "add_step", new_capability="slack.post_message")
    body = text_of(page)
    assert 'value="poll:outlook.new_email" checked' in body and "New email in Outlook" in body
    assert 'name="poll-outlook.new_email-query"' in body
    buttons = picker_buttons(body, 0, "text")
    for name in ("from", "subject", "date", "snippet", "body_text", "id"):
        assert buttons[f"trigger.email.{name}"] == f"Trigger: email: {name.replace('_', ' ')} (text)", name
    form.update({"steps-0-capability": "slack.post_message", "steps-0-value-channel": "#accounts",
                 "steps-0-value-text": "Invoice from {{ trigger.email.from }}: {{ trigger.email.subject }}"})

    saved = press(visitor, form, "save")

    assert saved.status_code == 303, text_of(saved)
    assert owner_conn.execute("SELECT trigger FROM automations").fetchone()[0] == {
        "kind": "poll", "source": "outlook.new_email", "every_minutes": 15,
        "options": {"query": "from:billing invoice"}}
    assert "Mail.Read" in text_of(visitor.get(saved.headers["Location"]))
