"""A one-time notice survives a stray request for a missing page (a favicon, say)."""

from __future__ import annotations

from tests.integration.conftest import PASSWORD, new_email


def test_a_notice_is_not_used_up_by_a_404_in_between(visitor):
    response = visitor.signup_form(new_email(), PASSWORD)
    assert response.status_code == 303
    assert visitor.get("/favicon.ico").status_code == 404
    page = visitor.get(response.headers["Location"]).get_data(as_text=True)
    assert "We sent an email to the address you gave" in page


def test_every_page_names_our_own_icon_so_browsers_ask_for_nothing_else(visitor):
    page = visitor.get("/").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in page
    assert visitor.get("/static/favicon.svg").status_code == 200
