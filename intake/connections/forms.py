"""The connection forms; Flask-WTF adds and checks the CSRF token on each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import UUID, AnyOf, InputRequired, Length, Optional

from shared.catalog import PROVIDERS, AuthKind

API_KEY_PROVIDERS = sorted(key for key, p in PROVIDERS.items() if p.auth_kind is AuthKind.API_KEY)
# The agent keeps keys between these lengths; anything else is refused here first.
MIN_API_KEY_LENGTH = 16
MAX_API_KEY_LENGTH = 4096


BACK_TO_AUTOMATION = "automation"


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class ConnectForm(FlaskForm):
    """Start consent: for one automation, to renew one connection, or for every saved automation."""

    automation_id = HiddenField(validators=[Optional(), UUID(message="Not a known automation.")],
                                filters=[_stripped])
    connection_id = HiddenField(validators=[Optional(), UUID(message="Not a known connection.")],
                                filters=[_stripped])
    # "automation" when the automation's own page asked: the client is brought back to it afterwards.
    back = HiddenField(validators=[Optional(), AnyOf([BACK_TO_AUTOMATION], message="Not a known page.")])


class ApiKeyForm(FlaskForm):
    provider = HiddenField(validators=[InputRequired(), AnyOf(API_KEY_PROVIDERS, message="Not a service Hapex "
                                                                                  "connects with a key.")])
    api_key = PasswordField(
        "Secret key",
        validators=[
            InputRequired(),
            Length(min=MIN_API_KEY_LENGTH, max=MAX_API_KEY_LENGTH,
                   message=f"Use between {MIN_API_KEY_LENGTH} and {MAX_API_KEY_LENGTH} characters."),
        ],
        description="Sent once to the service that encrypts it; Hapex shows only its last four characters.",
    )
    label = StringField("Name (optional)", validators=[Optional(), Length(max=100)], filters=[_stripped])


class DisconnectForm(FlaskForm):
    confirm = BooleanField(
        "Yes, disconnect it: revoke Hapex's access and delete the stored credentials",
        validators=[InputRequired(message="Tick the box to confirm that you want to disconnect.")],
    )


class ReduceAccessForm(FlaskForm):
    """End a grant and ask again for less: nothing to fill in, the CSRF token is the form."""
