"""What the intake sends to sign a person in or change a password, and what it gets back."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_NO_NUL = validate.ContainsNoneOf("\x00")
TICKET_SHAPE = r"^[A-Za-z0-9_-]{43}$"


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class NewSessionSchema(_Strict):
    """How the session to start looks: the device label and the intake's limits (capped by the database)."""

    device = fields.String(load_default="Unknown device", validate=[validate.Length(1, 60), _NO_NUL])
    idle_minutes = fields.Integer(required=True, validate=validate.Range(1, 24 * 60))
    absolute_hours = fields.Integer(required=True, validate=validate.Range(1, 24 * 30))


class SignInSchema(NewSessionSchema):
    email = fields.String(required=True, validate=[validate.Length(3, 254), _NO_NUL])
    password = fields.String(required=True, validate=[validate.Length(1, MAX_PASSWORD_LENGTH), _NO_NUL])


class SecondFactorSignInSchema(NewSessionSchema):
    client_id = fields.UUID(required=True)
    ticket = fields.String(required=True, validate=validate.Regexp(TICKET_SHAPE))
    # Six digits from the app, or a recovery code (XXXX-XXXX-XXXX-XXXX, any case, dashes optional).
    code = fields.String(required=True, validate=[validate.Length(6, 40), _NO_NUL])


class SignedInSchema(Schema):
    """`signed_in` with the new session's secret, `second_factor` with a ticket for the code, or `refused`."""

    outcome = fields.String(required=True, validate=validate.OneOf(["signed_in", "second_factor", "refused"]))
    client_id = fields.UUID(allow_none=True)
    user_id = fields.UUID(allow_none=True)
    session = fields.String(allow_none=True)
    ticket = fields.String(allow_none=True)


class PasswordSchema(_Strict):
    password = fields.String(required=True, validate=[validate.Length(1, MAX_PASSWORD_LENGTH), _NO_NUL])


class MatchesSchema(Schema):
    matches = fields.Boolean(required=True)


class ChangePasswordSchema(NewSessionSchema):
    current_password = fields.String(required=True, validate=[validate.Length(1, MAX_PASSWORD_LENGTH), _NO_NUL])
    new_password = fields.String(required=True,
                                 validate=[validate.Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH), _NO_NUL])


class PasswordChangedSchema(Schema):
    """`changed` with this browser's new session (every other one ended), or `refused`."""

    outcome = fields.String(required=True, validate=validate.OneOf(["changed", "refused"]))
    session = fields.String(allow_none=True)
    sessions_ended = fields.Integer(allow_none=True)


class ChangeEmailSchema(_Strict):
    password = fields.String(required=True, validate=[validate.Length(1, MAX_PASSWORD_LENGTH), _NO_NUL])
    new_email = fields.Email(required=True, validate=[validate.Length(3, 254), _NO_NUL])
    link_base = fields.String(required=True, validate=[validate.Length(8, 300), validate.Regexp(r"^https?://"),
                                                       _NO_NUL])


class EmailRequestedSchema(Schema):
    """`sent` (queued), `limited` (enough of these lately) or `refused` (wrong password)."""

    outcome = fields.String(required=True, validate=validate.OneOf(["sent", "limited", "refused"]))
