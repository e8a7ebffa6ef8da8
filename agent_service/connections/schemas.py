"""What the intake may send when it connects a provider for a client."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from agent_service.connections.provider_oauth import RevocationOutcome
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
    # PostgreSQL text cannot hold NUL: refused here (400) rather than failing the insert (500).
    api_key = fields.String(required=True, validate=[validate.Length(16, 4096), validate.ContainsNoneOf("\x00")])
    label = fields.String(load_default=None, validate=[validate.Length(1, 100), validate.ContainsNoneOf("\x00")])


# --- what the agent answers --------------------------------------------------------------

# What a disconnect answers: the provider's revocation outcome, or that there was nothing left to revoke.
ALREADY_DISCONNECTED = "already_disconnected"
REVOCATIONS = [*(outcome.value for outcome in RevocationOutcome), ALREADY_DISCONNECTED]


class ConnectionSchema(Schema):
    """A connection's metadata: never a token, only an API key's last four characters."""

    connection_id = fields.UUID(required=True)
    provider = fields.String(required=True)
    auth_kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in AuthKind]))
    status = fields.String(required=True, validate=validate.OneOf(["pending", "active", "needs_reauth", "revoked"]))
    status_reason = fields.String(allow_none=True)
    scopes_granted = fields.List(fields.String(), required=True)
    scopes_granted_at = fields.AwareDateTime(allow_none=True)
    account_label = fields.String(allow_none=True)
    secret_hint = fields.String(allow_none=True, validate=validate.Length(max=4))
    access_token_expires_at = fields.AwareDateTime(allow_none=True)
    last_used_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ConnectionListSchema(Schema):
    connections = fields.List(fields.Nested(ConnectionSchema), required=True)


class ConnectedSchema(Schema):
    """The stored connection, and any requested scope the provider did not grant."""

    connection = fields.Nested(ConnectionSchema, required=True)
    missing_scopes = fields.List(fields.String(), required=True)


class StoredKeySchema(Schema):
    connection = fields.Nested(ConnectionSchema, required=True)


class DisconnectedSchema(Schema):
    """How the provider took the revocation."""

    connection_id = fields.UUID(required=True)
    revocation = fields.String(required=True, validate=validate.OneOf(REVOCATIONS))


class RevokedAllSchema(Schema):
    """What was revoked and deleted before an account goes."""

    connections_revoked = fields.Integer(required=True, validate=validate.Range(min=0))
    credentials_deleted = fields.Integer(required=True, validate=validate.Range(min=0))
