"""What the intake sends and gets when it enrols a second factor or has a code checked."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class EnrolSchema(Schema):
    """Who is enrolling, shown in their authenticator app."""

    class Meta:
        unknown = RAISE

    account_name = fields.String(required=True, validate=[validate.Length(3, 254), validate.ContainsNoneOf("\x00")])


class EnrolledSchema(Schema):
    """The otpauth:// URI with the new secret, given once so that the intake can draw its QR code."""

    provisioning_uri = fields.String(required=True)


class CodeSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))
    # True for the first code, which confirms an enrolment; False at sign-in, which needs a confirmed one.
    confirm = fields.Boolean(load_default=False)


class CheckedSchema(Schema):
    accepted = fields.Boolean(required=True)


class RemovedSchema(Schema):
    removed = fields.Boolean(required=True)
