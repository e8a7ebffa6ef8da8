"""The builder says, before saving, that a Claude step cannot run on a deployment without the model."""

from __future__ import annotations

import pytest

from tests.integration.test_automations_pages import digest_form, press, text_of

SAID = "This Hapex installation has no Claude model set up, so this step would fail when it runs."


def test_a_claude_step_on_a_deployment_without_the_model_is_said_before_saving(signed_up):
    visitor, _ = signed_up
    page = text_of(press(visitor, digest_form(visitor), "add_step", new_capability="gmail.create_draft"))
    assert page.count(SAID) == 1  # next to the Claude step only


class TestWithTheModel:
    @pytest.fixture
    def agent_environ(self):
        return {"ANTHROPIC_API_KEY": "sk-ant-test-configured"}

    def test_nothing_is_said_when_the_model_is_there(self, signed_up):
        visitor, _ = signed_up
        assert SAID not in text_of(press(visitor, digest_form(visitor), "add_step", new_capability="gmail.read"))
