"""Accounts and sessions: sign up, log in, log out, change password, delete account."""

from intake.accounts import email_views as _email_views  # noqa: F401 - registers its routes
from intake.accounts import members as _members  # noqa: F401 - registers its routes
from intake.accounts import passkeys as _passkeys  # noqa: F401 - registers its routes
from intake.accounts import second_factor as _second_factor  # noqa: F401 - registers its routes
from intake.accounts.views import blueprint

__all__ = ["blueprint"]
