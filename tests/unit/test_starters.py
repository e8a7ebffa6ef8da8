"""Every starter in the gallery survives the builder's round trip and is valid but for what only the client knows."""

from __future__ import annotations

import pytest

from intake.automations import forms
from intake.automations.starters import STARTERS
from shared.automations import InvalidAutomation, load_automation

# What a starter leaves for the client to fill in.
LEFT_TO_FILL = {"new-lead-to-sheet": {3: {"spreadsheet_id"}}}


@pytest.mark.parametrize("starter", STARTERS, ids=lambda s: s.key)
def test_a_starter_opens_in_the_builder_and_saves_once_the_client_fills_in_what_is_theirs(starter):
    draft = forms.draft_from_definition(starter.definition)
    definition, unreadable = forms.definition_from_draft(draft)
    assert not unreadable
    missing = LEFT_TO_FILL.get(starter.key, {})
    if not missing:
        load_automation(definition)
        return
    with pytest.raises(InvalidAutomation) as raised:
        load_automation(definition)
    assert {index: set(messages["input"]) for index, messages in raised.value.messages["steps"].items()} == missing
    for index, names in missing.items():
        for name in names:
            definition["steps"][index]["input"][name] = "1AbCdEfGhIjKlMnOp"
    load_automation(definition)
