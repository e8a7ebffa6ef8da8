"""The account forms; Flask-WTF adds and checks the CSRF token on each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from shared.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

# Printable ASCII only: PostgreSQL's citext and Python fold some non-ASCII letters (İ)
# differently, which would let one account be counted under two throttle buckets.
EMAIL_SHAPE = r"^[!-?A-~]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
NEW_PASSWORD_HELP = f"At least {MIN_PASSWORD_LENGTH} characters. A long passphrase is best."


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            InputRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=f"Use between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH} characters.",
            ),
        ],
        description=NEW_PASSWORD_HELP,
    )


def _email(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            InputRequired(),
            Length(min=3, max=254),
            Regexp(EMAIL_SHAPE, message="Enter an email address like name@example.com."),
        ],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )


# A password given to prove who you are: any length we accept, bounded against abuse.
def _existing_password(label: str) -> PasswordField:
    return PasswordField(label, validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class SignupForm(FlaskForm):
    business_name = StringField(
        "Business name",
        validators=[InputRequired(), Length(min=1, max=200)],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )
    email = _email()
    password = _new_password("Password")


class LoginForm(FlaskForm):
    email = _email()
    password = _existing_password("Password")


class ChangePasswordForm(FlaskForm):
    current_password = _existing_password("Current password")
    new_password = _new_password("New password")
    confirm_password = PasswordField(
        "New password, again",
        validators=[InputRequired(), EqualTo("new_password", message="The two new passwords differ.")],
    )


class DeleteAccountForm(FlaskForm):
    password = _existing_password("Your password")


class ForgotPasswordForm(FlaskForm):
    email = _email()


class ResetPasswordForm(FlaskForm):
    new_password = _new_password("New password")
    confirm_password = PasswordField(
        "New password, again",
        validators=[InputRequired(), EqualTo("new_password", message="The two new passwords differ.")],
    )


class ConfirmForm(FlaskForm):
    """A button and its CSRF token: a link in an email changes nothing until its page is submitted."""


class SecondFactorForm(FlaskForm):
    """A code from the authenticator app, or one of the recovery codes."""

    code = StringField(
        "Code",
        validators=[InputRequired(), Length(min=6, max=32)],
        filters=[lambda value: value.strip().replace(" ", "").replace("-", "") if isinstance(value, str) else value],
        description="The 6 digits your authenticator app shows now, or one of your recovery codes.",
    )


class EnrolConfirmForm(FlaskForm):
    code = StringField(
        "The 6-digit code your app shows",
        validators=[InputRequired(), Regexp(r"^[0-9]{6}$", message="Enter the 6 digits your app shows.")],
        filters=[lambda value: value.strip().replace(" ", "") if isinstance(value, str) else value],
    )


class TurnOffSecondFactorForm(FlaskForm):
    factor_password = _existing_password("Your password, to turn it off")
    code = StringField("A code from your app, or a recovery code", validators=[InputRequired(), Length(min=6, max=32)],
                       filters=[lambda value: value.strip().replace(" ", "").replace("-", "")
                                if isinstance(value, str) else value])


class InviteForm(FlaskForm):
    email = _email()
    role = SelectField("Role", choices=[SelectChoice("member", "Member: automations, connections and runs"),
                                        SelectChoice("owner", "Owner: also members and deleting the business")],
                       default="member")


class MemberRoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice("member", "Member"), SelectChoice("owner", "Owner")])


class ChangeEmailForm(FlaskForm):
    new_email = _email("New email address")
    # Its own name (so its own id and label): the account page holds other password fields.
    email_password = _existing_password("Password, to confirm the change")
