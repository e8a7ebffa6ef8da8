"""Where an emailed account link opens: the intake's page, which the agent's worker builds links to."""

from __future__ import annotations

# The intake serves it (intake/accounts/email_links.py); the worker draws the token and appends it.
LINK_PATH = "/email-link/"
