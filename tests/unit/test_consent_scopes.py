"""What a consent asks for when scopes are granted that no saved automation uses any more."""

from __future__ import annotations

import uuid

from intake.connections.consent_scopes import plan, unused_scopes
from shared.catalog import get_provider

G = "https://www.googleapis.com/auth/"
GOOGLE = get_provider("google")


def test_a_write_scope_whose_read_half_is_still_needed_is_unused():
    assert unused_scopes(GOOGLE, [G + "spreadsheets"], (G + "spreadsheets.readonly",)) == (G + "spreadsheets",)


def test_a_narrower_scope_implied_by_a_needed_one_is_used():
    assert unused_scopes(GOOGLE, [G + "gmail.metadata"], (G + "gmail.readonly",)) == ()


def test_with_no_automation_using_the_provider_every_granted_scope_is_unused():
    assert unused_scopes(GOOGLE, [G + "drive.file"], None) == (G + "drive.file",)


def test_widening_a_google_grant_that_holds_an_unused_scope_ends_it_first_and_does_not_merge():
    active = {"connection_id": uuid.uuid4(), "scopes_granted": [G + "spreadsheets"]}
    needed_by_all = (G + "calendar.events.readonly", G + "spreadsheets.readonly")
    wanted = plan(GOOGLE, needed=(G + "calendar.events.readonly",), needed_by_all=needed_by_all, active=active)
    assert wanted.end_grant_first == (G + "spreadsheets",)
    assert wanted.authorization_params == {}
    assert wanted.scopes == needed_by_all and wanted.connection_id == active["connection_id"]


def test_widening_a_grant_whose_scopes_are_all_used_merges_incrementally():
    active = {"connection_id": uuid.uuid4(), "scopes_granted": [G + "spreadsheets.readonly"]}
    needed_by_all = (G + "calendar.events.readonly", G + "spreadsheets.readonly")
    wanted = plan(GOOGLE, needed=needed_by_all, needed_by_all=needed_by_all, active=active)
    assert wanted.end_grant_first == ()
    assert wanted.authorization_params == {"include_granted_scopes": "true"}
    assert wanted.scopes == (G + "calendar.events.readonly",)
