"""What the intake sends and gets for passkeys: options for the browser, its answer, the verdict."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from agent_service.sign_in.schemas import TICKET_SHAPE, NewSessionSchema

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
    """A pending sign-in's ticket (a passkey as the second step after the password), or nothing
    (instead of a password)."""

    class Meta:
        unknown = RAISE

    client_id = fields.UUID(load_default=None)
    ticket = fields.String(load_default=None, validate=validate.Regexp(TICKET_SHAPE))


class PasskeyCheckSchema(NewSessionSchema):
    """The browser's assertion and the session to start with it."""

    credential = fields.Dict(required=True)
    # Both for the second step (the pending sign-in /v1/sign-in answered); neither for a sign-in without a password.
    client_id = fields.UUID(load_default=None)
    ticket = fields.String(load_default=None, validate=validate.Regexp(TICKET_SHAPE))


class ProofSchema(Schema):
    """A signed-in user's fresh proof with one of their passkeys (before removing one)."""

    class Meta:
        unknown = RAISE

    credential = fields.Dict(required=True)


class ProvedSchema(Schema):
    accepted = fields.Boolean(required=True)


class PasskeyRemovedSchema(Schema):
    removed = fields.Boolean(required=True)
