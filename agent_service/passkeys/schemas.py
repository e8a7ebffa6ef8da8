"""What the intake sends and gets for passkeys: options for the browser, its answer, the verdict."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

NO_CONTROL = validate.Regexp(r"^[^\x00-\x1f\x7f]*$")


class RegistrationOptionsRequestSchema(Schema):
    """Who is registering, as their device shows the account."""

    class Meta:
        unknown = RAISE

    account_name = fields.String(required=True, validate=[validate.Length(3, 254), NO_CONTROL])


class PasskeyOptionsSchema(Schema):
    """PublicKeyCredentialCreationOptions or ...RequestOptions in their JSON form, for the browser."""

    options = fields.Dict(required=True)


class RegisterSchema(Schema):
    class Meta:
        unknown = RAISE

    # The browser's PublicKeyCredential in its JSON form (base64url members), as the page posts it.
    credential = fields.Dict(required=True)
    label = fields.String(required=True, validate=[validate.Length(1, 60), NO_CONTROL])


class RegisteredSchema(Schema):
    passkey_id = fields.UUID(required=True)


class SignInOptionsRequestSchema(Schema):
    """A user whose password was right (a passkey as their second factor), or no one (instead of a password)."""

    class Meta:
        unknown = RAISE

    client_id = fields.UUID(load_default=None)
    user_id = fields.UUID(load_default=None)


class PasskeyCheckSchema(Schema):
    class Meta:
        unknown = RAISE

    credential = fields.Dict(required=True)
    # Both for a second factor (the user the password named); neither for a sign-in without one.
    client_id = fields.UUID(load_default=None)
    user_id = fields.UUID(load_default=None)


class PasskeyCheckedSchema(Schema):
    accepted = fields.Boolean(required=True)
    # Who the passkey proved to be, when accepted.
    client_id = fields.UUID(allow_none=True)
    user_id = fields.UUID(allow_none=True)


class PasskeyRemovedSchema(Schema):
    removed = fields.Boolean(required=True)
