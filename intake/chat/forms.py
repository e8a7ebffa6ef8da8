"""The chat's forms; Flask-WTF adds and checks the CSRF token on each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

MAX_MESSAGE_CHARACTERS = 4000


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class MessageForm(FlaskForm):
    message = TextAreaField(
        "Your message",
        validators=[
            DataRequired(message="Write a message first."),
            Length(max=MAX_MESSAGE_CHARACTERS,
                   message=f"Keep a message under {MAX_MESSAGE_CHARACTERS} characters; send the rest next."),
        ],
        filters=[_stripped],
        description="Say what should happen, when, and where the result should go. Never paste a password or key.",
    )


class ApproveForm(FlaskForm):
    # The proposal the page showed: approval applies to exactly that one.
    revision = HiddenField(validators=[DataRequired(), Regexp(r"^[1-9][0-9]{0,8}$")])


class AskAgainForm(FlaskForm):
    """Ask Claude again about the last message, after an error; carries only the CSRF token."""
