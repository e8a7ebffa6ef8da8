"""Which function implements each catalog capability, and the one way the run engine calls them."""

from __future__ import annotations

from typing import Any

from agent_service.capabilities import (
    anthropic,
    condition,
    google_calendar,
    google_drive,
    google_gmail,
    google_sheets,
    hubspot,
    microsoft,
    notion,
    slack,
    webhook,
)
from agent_service.capabilities.base import CapabilityFunction, OutputInvalid, StepContext, StepResult
from shared.catalog import get_capability
from shared.secret import Secret

IMPLEMENTATIONS: dict[str, CapabilityFunction] = {
    "gmail.list_recent": google_gmail.list_recent,
    "gmail.search": google_gmail.search,
    "gmail.read": google_gmail.read,
    "gmail.create_draft": google_gmail.create_draft,
    "sheets.read": google_sheets.read,
    "sheets.append": google_sheets.append,
    "calendar.list_events": google_calendar.list_events,
    "calendar.create_event": google_calendar.create_event,
    "drive.read_file": google_drive.read_file,
    "slack.post_message": slack.post_message,
    "outlook.search_mail": microsoft.search_mail,
    "outlook.list_events": microsoft.list_events,
    "outlook.create_event": microsoft.create_event,
    "notion.append_to_page": notion.append_to_page,
    "hubspot.create_contact": hubspot.create_contact,
    "webhook.post": webhook.post,
    "llm.summarise": anthropic.summarise,
    "llm.classify": anthropic.classify,
    "llm.extract": anthropic.extract,
    "condition.continue_if": condition.continue_if,
}


def run_capability(key: str, ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """Run one step and hold its output to the catalog's output schema before a later step sees it."""
    capability = get_capability(key)
    result = IMPLEMENTATIONS[key](ctx, token, data)
    errors = capability.output_checker.validate(result.output)
    if errors:
        # Field names only: the offending values are the provider's content.
        raise OutputInvalid(f"The output of {key} did not match its schema (fields: {', '.join(sorted(errors))}).",
                            llm_usage=result.llm_usage)
    if any(type(value) is not int for value in result.counts.values()):
        raise OutputInvalid(f"The counts of {key} must be whole numbers.", llm_usage=result.llm_usage)
    return result
