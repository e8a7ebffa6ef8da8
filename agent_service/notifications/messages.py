"""What each kind of notice says, in the app and by email: fixed text, a provider's name and
a percentage at most. Never an automation's name, a connection's label or any content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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


ACCOUNT_FOOTER = (
    "\n\nThis message was sent automatically by Hapex because of a request made on its website. "
    "If you did not make it, you can ignore this email; nothing changes unless the link is used.\n"
)


def _minutes(ttl: timedelta | None) -> str:
    minutes = int(ttl.total_seconds() // 60) if ttl is not None else 0
    if minutes >= 48 * 60:
        return f"{minutes // (24 * 60)} days"
    if minutes >= 120:
        return f"{minutes // 60} hours"
    return f"{minutes} minutes"


def compose_account_email(kind: str, *, link: str | None, link_ttl: timedelta | None) -> Notice:
    """An account email: fixed text for its kind and, for some kinds, a single-use link."""
    if kind == "verify_email":
        return Notice(
            "Confirm your email address for Hapex",
            "Someone, hopefully you, created a Hapex account with this email address. To confirm "
            f"that it is yours, open this link within {_minutes(link_ttl)}:\n\n{link}\n\n"
            "Until the address is confirmed, the account cannot connect a service or turn on an "
            "automation." + ACCOUNT_FOOTER,
        )
    if kind == "already_registered":
        return Notice(
            "You already have a Hapex account",
            "Someone, hopefully you, tried to create a Hapex account with this email address, but "
            "this address already has one, so no new account was made.\n\nIf it was you, sign in "
            "instead; if you have forgotten your password, use \"Forgot your password?\" on the "
            "sign-in page." + ACCOUNT_FOOTER,
        )
    if kind == "reset_password":
        return Notice(
            "Reset your Hapex password",
            "Someone, hopefully you, asked to reset the password of the Hapex account with this "
            f"email address. To choose a new password, open this link within {_minutes(link_ttl)}; "
            f"it works once:\n\n{link}\n\nSetting a new password signs out every session of the "
            "account." + ACCOUNT_FOOTER,
        )
    if kind == "password_changed":
        return Notice(
            "Your Hapex password was changed",
            "The password of your Hapex account was just changed, and every session of the account "
            "was signed out.\n\nIf you did not do this, reset your password at once with \"Forgot "
            "your password?\" on the sign-in page, and tell us at the address on Hapex's security page."
            + FOOTER,
        )
    if kind == "verify_new_email":
        return Notice(
            "Confirm your new email address for Hapex",
            "Someone, hopefully you, asked to use this email address for their Hapex account instead of the "
            f"one it has. To confirm, open this link within {_minutes(link_ttl)}; it works once:\n\n{link}"
            + ACCOUNT_FOOTER,
        )
    if kind == "email_changed":
        return Notice(
            "The email address of your Hapex account was changed",
            "The email address of your Hapex account was just changed from this one to another, confirmed "
            "at the new address. Hapex will write to the new address from now on.\n\nIf you did not do this, "
            "tell us at once at the address on Hapex's security page." + FOOTER,
        )
    if kind == "invitation":
        return Notice(
            "You are invited to join a team on Hapex",
            "Someone who runs a business's automations on Hapex invited you to join their account with this "
            f"email address. To accept, open this link within {_minutes(link_ttl)} and choose your password; "
            f"it works once:\n\n{link}" + ACCOUNT_FOOTER,
        )
    if kind == "invitation_taken":
        return Notice(
            "An invitation to Hapex could not be used",
            "Someone invited this email address to join their business on Hapex, but the address already has "
            "a Hapex account, and one address belongs to one business. Nothing changed in your account. If you "
            "should join them, ask them to invite another address." + ACCOUNT_FOOTER,
        )
    if kind in ("second_factor_on", "second_factor_off"):
        on = kind == "second_factor_on"
        return Notice(
            f"Two-step sign-in was turned {'on' if on else 'off'} for your Hapex account",
            f"Two-step sign-in was just turned {'on' if on else 'off'} for your Hapex account"
            + (": signing in now also asks for a code from your authenticator app." if on else
               ": signing in now needs only your password.")
            + "\n\nIf you did not do this, reset your password at once with \"Forgot your password?\" on the "
            "sign-in page, and tell us at the address on Hapex's security page." + FOOTER,
        )
    if kind in ("passkey_added", "passkey_removed"):
        added = kind == "passkey_added"
        return Notice(
            f"A passkey was {'added to' if added else 'removed from'} your Hapex account",
            f"A passkey was just {'added to' if added else 'removed from'} your Hapex account"
            + (": it can now sign you in, instead of your password or as the second step after it." if added
               else ": it can no longer sign you in.")
            + "\n\nIf you did not do this, reset your password at once with \"Forgot your password?\" on the "
            "sign-in page, and tell us at the address on Hapex's security page." + FOOTER,
        )
    raise ValueError("unknown account email kind")
