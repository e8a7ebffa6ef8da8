"""What the intake may send when it connects a provider for a client."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.catalog import PROVIDERS, AuthKind

OAUTH_PROVIDERS = sorted(k for k, p in PROVIDERS.items() if p.auth_kind is AuthKind.OAUTH2)
API_KEY_PROVIDERS = sorted(k for k, p in PROVIDERS.items() if p.auth_kind is AuthKind.API_KEY)


class OAuthExchangeSchema(Schema):
    """An authorization code the intake received on its callback, with its PKCE verifier."""

    class Meta:
        unknown = RAISE

    provider = fields.String(required=True, validate=validate.OneOf(OAUTH_PROVIDERS))
    code = fields.String(required=True, validate=validate.Length(1, 2048))
    code_verifier = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9._~-]{43,128}$"))
    redirect_uri = fields.Url(required=True, schemes={"https"}, require_tld=False)
    requested_scopes = fields.List(fields.String(validate=validate.Length(1, 200)), required=True,
                                   validate=validate.Length(0, 30))
    connection_id = fields.UUID(load_default=None)


class ApiKeySchema(Schema):
    """An API key a client typed into the intake, forwarded in the same request."""

    class Meta:
        unknown = RAISE

    provider = fields.String(required=True, validate=validate.OneOf(API_KEY_PROVIDERS))
    api_key = fields.String(required=True, validate=validate.Length(16, 4096))
    label = fields.String(load_default=None, validate=validate.Length(1, 100))
