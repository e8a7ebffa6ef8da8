"""The gallery of starter automations: definitions that open pre-filled in the builder.

Each is an ordinary definition, checked by the same validation as any other (a test loads
every one); what only the client can know (a spreadsheet id) is left empty for them to fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Starter:
    key: str
    title: str
    description: str
    definition: dict[str, Any]


WEEKDAYS_AT_EIGHT = {"kind": "schedule", "cron": "0 8 * * 1-5", "timezone": "Europe/London"}

STARTERS: tuple[Starter, ...] = (
    Starter("invoice-digest", "Invoice digest",
            "Every weekday at 08:00, the invoices that arrived by email, summarised in Slack.", {
                "name": "Invoice digest",
                "trigger": WEEKDAYS_AT_EIGHT,
                "steps": [
                    {"capability": "gmail.search", "input": {"query": "subject:invoice newer_than:1d"}},
                    {"capability": "llm.summarise", "input": {
                        "text": {"$ref": "steps.0.messages"},
                        "instructions": "One line per invoice: who sent it and what it is for."}},
                    {"capability": "slack.post_message", "input": {
                        "channel": "#accounts", "text": "Invoices since yesterday:\n{{ steps.2.text }}"}},
                ],
            }),
    Starter("big-invoice-alert", "Big invoice alert",
            "Only when an invoice is over 500, a message in Slack with who sent it and the amount.", {
                "name": "Big invoice alert",
                "trigger": WEEKDAYS_AT_EIGHT,
                "steps": [
                    {"capability": "gmail.search", "input": {"query": "subject:invoice newer_than:1d",
                                                             "max_results": 1}},
                    {"capability": "llm.extract", "input": {"text": {"$ref": "steps.0.messages"},
                                                            "fields": ["amount", "vendor"]}},
                    {"capability": "condition.continue_if", "input": {
                        "value": "{{ steps.2.values.amount }}", "operator": "greater_than",
                        "compare_to": "500", "compare_as": "number"}},
                    {"capability": "slack.post_message", "input": {
                        "channel": "#accounts",
                        "text": "New invoice from {{ steps.1.messages.1.sender }} ({{ steps.2.values.vendor }}): "
                                "{{ steps.2.values.amount }}"}},
                ],
            }),
    Starter("new-lead-to-sheet", "New lead to a sheet",
            "Enquiry emails become rows of a Google Sheet: name, email and company.", {
                "name": "New lead to a sheet",
                "trigger": WEEKDAYS_AT_EIGHT,
                "steps": [
                    {"capability": "gmail.search", "input": {"query": "subject:enquiry newer_than:1d",
                                                             "max_results": 1}},
                    {"capability": "gmail.read", "input": {"message_ids": ["{{ steps.1.messages.1.id }}"]}},
                    {"capability": "llm.extract", "input": {"text": {"$ref": "steps.1.emails"},
                                                            "fields": ["name", "email", "company"]}},
                    {"capability": "sheets.append", "input": {
                        "range": "Leads!A1",
                        "rows": [["{{ steps.3.values.name }}", "{{ steps.3.values.email }}",
                                  "{{ steps.3.values.company }}", "{{ trigger.started_at }}"]]}},
                ],
            }),
    Starter("todays-calendar", "Summarise today's calendar",
            "At 07:30 on weekdays, today's meetings in a few lines, in Slack.", {
                "name": "Today's calendar",
                "trigger": {"kind": "schedule", "cron": "30 7 * * 1-5", "timezone": "Europe/London"},
                "steps": [
                    {"capability": "calendar.list_events", "input": {"days_ahead": 1}},
                    {"capability": "llm.summarise", "input": {
                        "text": {"$ref": "steps.0.events"},
                        "instructions": "Today's meetings in order, with their times, in a few lines."}},
                    {"capability": "slack.post_message", "input": {"channel": "#general",
                                                                   "text": "Today: {{ steps.2.text }}"}},
                ],
            }),
)

BY_KEY = {starter.key: starter for starter in STARTERS}
