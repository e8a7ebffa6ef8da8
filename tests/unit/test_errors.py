"""Every domain error says who it is once: one name per condition, a real status, a sentence to show."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import agent_service
import intake
import shared
from shared.errors import HapexError

# Modules that build an app from the environment when imported.
ENTRY_POINTS = {"agent_service.wsgi", "intake.wsgi"}


def _import_everything() -> None:
    for package in (shared, agent_service, intake):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name not in ENTRY_POINTS:
                importlib.import_module(module.name)


def _domain_errors() -> list[type[HapexError]]:
    _import_everything()
    found, waiting = [], [HapexError]
    while waiting:
        error = waiting.pop()
        found.append(error)
        waiting.extend(error.__subclasses__())
    return sorted(set(found), key=lambda error: f"{error.__module__}.{error.__qualname__}")


def test_the_domain_errors_are_found_across_both_services_and_shared():
    modules = {error.__module__.partition(".")[0] for error in _domain_errors()}
    assert {"shared", "agent_service"} <= modules
    assert len(_domain_errors()) > 40


def test_no_two_domain_errors_share_a_name():
    named: dict[str, str] = {}
    for error in _domain_errors():
        if "name" not in vars(error):
            continue  # a refinement of its parent's condition (say, which thing was not found)
        where = f"{error.__module__}.{error.__qualname__}"
        assert error.name not in named, f"{where} and {named[error.name]} are both {error.name!r}"
        named[error.name] = where


@pytest.mark.parametrize("error", _domain_errors(), ids=lambda error: error.__qualname__)
def test_every_domain_error_has_a_name_a_4xx_or_5xx_status_and_a_message(error):
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error.name)
    assert 400 <= error.status <= 599
    assert isinstance(error.message, str) and error.message.strip()


def test_a_domain_error_answers_in_the_one_shape_and_an_instance_may_say_more():
    from agent_service.runs.triggers import AutomationMissing, RunRefused

    missing = AutomationMissing()
    assert isinstance(missing, RunRefused)
    assert (missing.status, missing.body()) == (404, {"error": "not_found",
                                                      "message": "No such automation for this client."})
    assert RunRefused("The automation is not enabled.").body() == {
        "error": "run_refused", "message": "The automation is not enabled."}
    assert str(RunRefused()) == "This run cannot start."


def test_an_error_class_with_a_docstring_sets_its_own_message():
    """A docstring says why a class exists; the sentence a client reads is `message` (once it was the docstring)."""
    from agent_service.capabilities.base import StepFailed

    def below(base: type) -> list[type]:
        return [sub for direct in base.__subclasses__() for sub in (direct, *below(direct))]

    _import_everything()
    for error in below(HapexError):
        assert error.__doc__ is None or "message" in vars(error), error
    for failure in below(StepFailed):
        assert "safe_message" in vars(failure), failure
