"""Accounts and sessions: sign up, log in, log out, change password, delete account."""

from intake.accounts.views import blueprint

__all__ = ["blueprint"]
