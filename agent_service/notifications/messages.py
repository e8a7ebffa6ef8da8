"""What each kind of notice says, in the app and by email: fixed text, a provider's name and
a percentage at most. Never an automation's name, a connection's label or any content."""

from __future__ import annotations

from dataclasses import dataclass

from shared.catalog import PROVIDERS

FOOTER = (
    "\n\nThis message was sent automatically by Hapex. It holds no data from your accounts; "
    "sign in to Hapex to see the details.\n"
)


@dataclass(frozen=True)
class Notice:
    """A subject line and a plain-text body."""

    subject: str
    body: str


def provider_name(key: str | None) -> str:
    provider = PROVIDERS.get(key or "")
    return provider.name if provider is not None else "A connected service"


def compose(kind: str, *, provider: str | None = None, budget_percent: int | None = None) -> Notice:
    """The message for one notice, built from its kind and metadata alone."""
    if kind == "connection_needs_reauth":
        name = provider_name(provider)
        return Notice(
            f"Action needed: reconnect {name} to Hapex",
            f"Hapex can no longer use your {name} connection: {name} stopped accepting Hapex's access, "
            f"or could not be reached for several days. Automations that need {name} are paused until "
            f"you reconnect it.\n\nTo fix this, sign in to Hapex, open Connections and reconnect {name}; "
            "then resume the paused automations." + FOOTER,
        )
    if kind == "automation_paused":
        return Notice(
            "An automation was paused in Hapex",
            "One of your Hapex automations was paused and will not run until you act. Usually a "
            "connection it needs must be reconnected.\n\nSign in to Hapex and open Automations to see "
            "which one was paused, why, and how to resume it." + FOOTER,
        )
    if kind == "budget_nearly_used":
        percent = max(0, int(budget_percent or 0))
        if percent >= 100:
            return Notice(
                "You have used all of this month's Hapex budget",
                "Your Hapex automations have used all of the monthly budget you set, so scheduled runs are "
                "skipped and manual runs refused until next month.\n\nSign in to Hapex and open Costs to review "
                "the spending or raise the budget." + FOOTER,
            )
        return Notice(
            f"You have used {percent}% of this month's Hapex budget",
            f"Your Hapex automations have used {percent}% of the monthly budget you set. Once it is used "
            "up, scheduled runs are skipped and manual runs refused until next month.\n\nSign in to Hapex "
            "and open Costs to review the spending or change the budget." + FOOTER,
        )
    raise ValueError("unknown notice kind")
