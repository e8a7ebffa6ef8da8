"""The sandbox's OAuth 2.0 authorization server, one per catalog provider, built on Authlib.

What it insists on is what Hapex must do right against a real provider: the authorization
code flow with PKCE S256 (no plain, no missing challenge), the exact registered redirect URI,
RFC 9207 `iss` on every authorization response, refresh-token rotation (a used refresh token
is dead, and presenting it again kills the whole grant, as RFC 9700 4.14 advises), RFC 7009
revocation that authenticates the client, and access tokens short-lived enough that a run
has to refresh. The consent page lists each requested scope with a checkbox, and a Deny.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from werkzeug.datastructures import MultiDict

from hapex.sandbox import wiring
from hapex.sandbox.state import Code, Grant, Store, Token
from shared.catalog import PROVIDERS, Provider, Revocation, TokenAuth, TokenRequest

CODE_SECONDS = 300
TOKEN_PREFIXES = {"google": ("ya29.sbx-", "1//sbx-"), "slack": ("xoxe.xoxb-sbx-", "xoxe-1-sbx-")}


@dataclass(frozen=True)
class SandboxClient(ClientMixin):  # type: ignore[misc]  # Authlib is untyped
    """Hapex's registration at one sandboxed provider."""

    provider: Provider
    client_id: str
    secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        known = {s.name for s in self.provider.scopes} | set(self.provider.base_scopes)
        return " ".join(s for s in split_scopes(scope) if s in known)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return hmac.compare_digest(redirect_uri, self.redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return bool(method == self.provider.token_auth.value)
        # Revocation: either way of authenticating, but never none (RFC 7009 2.1).
        return method in (TokenAuth.POST.value, TokenAuth.BASIC.value)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


def split_scopes(scope: str | None) -> list[str]:
    return [s for s in (scope or "").replace(",", " ").split() if s]


class S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, confidential ones too, and only S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class Issuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


@dataclass
class CodeRecord:
    """Authlib's view of a stored authorization code."""

    code: Code

    def get_redirect_uri(self) -> str:
        return self.code.redirect_uri

    def get_scope(self) -> str:
        return " ".join(self.code.scopes)

    @property
    def code_challenge(self) -> str:
        return self.code.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.code.code_challenge_method


@dataclass
class TokenRecord:
    """Authlib's view of a stored refresh token."""

    token: Token
    grant: Grant

    def check_client(self, client: SandboxClient) -> bool:
        return self.grant.client_id == client.client_id

    def get_scope(self) -> str:
        return " ".join(self.grant.scopes)

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return self.token.expires_at is not None and self.token.expires_at < time.time()

    def is_revoked(self) -> bool:
        return self.token.revoked or self.grant.revoked


def _json_parameters() -> MultiDict[str, str]:
    body = request.get_json(silent=True)
    return MultiDict({k: str(v) for k, v in body.items()} if isinstance(body, dict) else {})


class _JsonPayload(FlaskOAuth2Payload):  # type: ignore[misc]  # Authlib is untyped
    """A token request's parameters from its JSON body (Notion's shape) rather than a form."""

    @property
    def data(self) -> MultiDict[str, str]:
        return _json_parameters()


class _JsonTokenRequest(FlaskOAuth2Request):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(request)
        self.payload = _JsonPayload(request)

    @property
    def form(self) -> MultiDict[str, str]:
        return _json_parameters()


class _JsonTokenServer(AuthorizationServer):  # type: ignore[misc]
    """A provider whose token endpoint takes JSON: the same checks, the parameters read from the body."""

    def create_oauth2_request(self, given: Any) -> Any:
        return _JsonTokenRequest() if request.is_json else super().create_oauth2_request(given)


class ProviderServer:
    """One provider's authorization server over the shared store."""

    def __init__(self, provider: Provider, client: SandboxClient, store: Store, issuer: str,
                 access_seconds: int) -> None:
        self.provider = provider
        self.client = client
        self.store = store
        self.issuer = issuer
        server_class = _JsonTokenServer if provider.token_request is TokenRequest.JSON else AuthorizationServer
        server = server_class(query_client=self._query_client, save_token=self._save_token)
        server.load_config({})
        access_prefix, refresh_prefix = TOKEN_PREFIXES.get(provider.key, ("sbx-at-", "sbx-rt-"))
        server.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=lambda *a, **k: access_prefix + secrets.token_urlsafe(32),
            refresh_token_generator=lambda *a, **k: refresh_prefix + secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: access_seconds,
        ))
        server.register_grant(self._code_grant(), [S256Required(required=True)])
        server.register_grant(self._refresh_grant())
        self.server = server
        server.register_endpoint(self._revocation_endpoint())
        server.register_extension(Issuer(issuer))

    def _query_client(self, client_id: str) -> SandboxClient | None:
        return self.client if hmac.compare_digest(client_id, self.client.client_id) else None

    def _save_token(self, token: dict[str, Any], oauth_request: Any) -> None:
        grant: Grant = oauth_request.user
        now = time.time()
        with self.store.lock:
            state = self.store.state
            state.tokens[token["access_token"]] = Token(token["access_token"], "access", grant.grant_id,
                                                        now + int(token["expires_in"]))
            if token.get("refresh_token"):
                state.tokens[token["refresh_token"]] = Token(token["refresh_token"], "refresh", grant.grant_id, None)
            state.count(f"{self.provider.key}.token.{oauth_request.payload.grant_type}")
            self.store.save()
        token["scope"] = " ".join(grant.scopes) if self.provider.scope_separator == " " else \
            self.provider.scope_separator.join(grant.scopes)
        if self.provider.key == "slack":
            token.update(ok=True, team={"id": "T0SANDBOX", "name": "Crumb & Co (sandbox)"},
                         bot_user_id="U0SANDBOXBOT", app_id="A0SANDBOX")

    def _code_grant(self) -> type[grants.AuthorizationCodeGrant]:
        outer = self

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = [outer.provider.token_auth.value]

            def save_authorization_code(self, code: str, oauth_request: Any) -> None:
                grant: Grant = oauth_request.user
                data = oauth_request.payload.data
                with outer.store.lock:
                    outer.store.state.grants[grant.grant_id] = grant
                    outer.store.state.codes[code] = Code(
                        code, grant.grant_id, outer.client.client_id, oauth_request.payload.redirect_uri,
                        list(grant.scopes), data["code_challenge"], data["code_challenge_method"],
                        time.time() + CODE_SECONDS)
                    outer.store.save()

            def query_authorization_code(self, code: str, client: SandboxClient) -> CodeRecord | None:
                with outer.store.lock:
                    stored = outer.store.state.codes.get(code)
                    if stored is None or stored.client_id != client.client_id or stored.expires_at < time.time():
                        return None
                    return CodeRecord(stored)

            def delete_authorization_code(self, record: CodeRecord) -> None:
                with outer.store.lock:
                    outer.store.state.codes.pop(record.code.value, None)

            def authenticate_user(self, record: CodeRecord) -> Grant | None:
                return outer.store.state.grants.get(record.code.grant_id)

        return CodeGrant

    def _refresh_grant(self) -> type[grants.RefreshTokenGrant]:
        outer = self

        class RotatingRefresh(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = [outer.provider.token_auth.value]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
                with outer.store.lock:
                    state = outer.store.state
                    token = state.tokens.get(refresh_token)
                    if token is None or token.kind != "refresh":
                        return None
                    grant = state.grants.get(token.grant_id)
                    if grant is None or grant.revoked:
                        return None
                    if token.revoked:
                        # A rotated-out refresh token came back: someone holds a copy. End the grant.
                        grant.revoked = True
                        state.count(f"{outer.provider.key}.refresh_reuse")
                        outer.store.save()
                        return None
                    return TokenRecord(token, grant)

            def authenticate_user(self, record: TokenRecord) -> Grant:
                return record.grant

            def revoke_old_credential(self, record: TokenRecord) -> None:
                with outer.store.lock:
                    record.token.revoked = True
                    outer.store.save()

        return RotatingRefresh

    def _revocation_endpoint(self) -> RevocationEndpoint:
        outer = self

        class Revocation(RevocationEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = [TokenAuth.BASIC.value, TokenAuth.POST.value]

            def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
                return outer.lookup(token_string)

            def revoke_token(self, record: TokenRecord, oauth_request: Any) -> None:
                outer.revoke_grant(record.grant)

        return Revocation(server=self.server)

    def lookup(self, token_string: str) -> TokenRecord | None:
        with self.store.lock:
            token = self.store.state.tokens.get(token_string)
            grant = self.store.state.grants.get(token.grant_id) if token else None
            if token is None or grant is None or grant.provider != self.provider.key:
                return None
            return TokenRecord(token, grant)

    def revoke_grant(self, grant: Grant) -> None:
        """Revoking any token of a grant ends the grant: every token issued under it stops working."""
        with self.store.lock:
            grant.revoked = True
            self.store.state.count(f"{self.provider.key}.revoked")
            self.store.save()


def consent_token(secret: str, query: str) -> str:
    """Binds the consent form to the authorization request it answers (a cross-site form cannot forge it)."""
    return hmac.new(secret.encode(), b"consent:" + query.encode(), hashlib.sha256).hexdigest()


def build_servers(store: Store, *, base_url: str, secret: str, intake_url: str,
                  access_seconds: int) -> dict[str, ProviderServer]:
    servers = {}
    for key in wiring.SANDBOXED_OAUTH:
        provider = PROVIDERS[key]
        client = SandboxClient(provider, wiring.client_id(key), wiring.client_secret(secret, key),
                               f"{intake_url.rstrip('/')}/connections/oauth/{key}/callback")
        issuer = wiring.provider_endpoints(base_url, provider)["issuer"]
        servers[key] = ProviderServer(provider, client, store, issuer, access_seconds)
    return servers


bp = Blueprint("oauth", __name__)


def _servers() -> dict[str, ProviderServer]:
    servers: dict[str, ProviderServer] = current_app.extensions["sandbox_servers"]
    return servers


def _server(provider: str) -> ProviderServer:
    server = _servers().get(provider)
    if server is None:
        abort(404)
    return server


def _oauth_error_page(error: OAuth2Error) -> tuple[str, int]:
    """An authorization request that cannot be answered to the client is shown, never redirected."""
    return render_template("error.html", error=error.error, description=error.description or ""), 400


@bp.route("/<provider>/oauth/authorize", methods=["GET", "POST"])
def authorize(provider: str) -> Any:
    server = _server(provider)
    try:
        consent = server.server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _oauth_error_page(error)
    requested = split_scopes(consent.request.payload.scope)
    query = request.query_string.decode()
    secret = current_app.config["SANDBOX_SECRET"]
    if request.method == "GET":
        scopes = [(name, _scope_purpose(server.provider, name)) for name in requested]
        return render_template("consent.html", provider=server.provider, scopes=scopes, query=query,
                               form_token=consent_token(secret, query))
    if not hmac.compare_digest(request.form.get("form_token", ""), consent_token(secret, query)):
        abort(400)
    ticked = [name for name in requested if request.form.get(f"scope:{name}") == "on"]
    user = None
    if request.form.get("decision") == "allow" and (ticked or not requested):
        user = Grant(secrets.token_hex(8), provider, server.client.client_id, ticked, time.time())
    with server.store.lock:
        server.store.state.count(f"{provider}.consent.{'allowed' if user else 'denied'}")
    return server.server.create_authorization_response(grant_user=user, grant=consent)


def _scope_purpose(provider: Provider, name: str) -> str:
    try:
        return provider.scope(name).purpose
    except KeyError:
        return "Keep access when you are not using the app (a refresh token)." if name == "offline_access" else ""


@bp.route("/<provider>/oauth/token", methods=["POST"])
def token(provider: str) -> Response:
    return _server(provider).server.create_token_response()  # type: ignore[no-any-return]


@bp.route("/<provider>/oauth/revoke", methods=["POST"])
def revoke(provider: str) -> Response:
    server = _server(provider)
    if server.provider.revocation is Revocation.NOTION:
        return _notion_revoke(server)
    if server.provider.revocation is not Revocation.RFC7009:
        abort(404)
    return server.server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)  # type: ignore[no-any-return]


def _notion_revoke(server: ProviderServer) -> Response:
    """Notion's shape: a JSON body, the client authenticated with HTTP Basic."""
    auth = request.authorization
    if auth is None or not (hmac.compare_digest(auth.username or "", server.client.client_id)
                            and server.client.check_client_secret(auth.password or "")):
        response = jsonify(error="invalid_client")
        response.status_code = 401
        return response
    body = request.get_json(silent=True) or {}
    record = server.lookup(str(body.get("token", "")))
    if record is not None:
        server.revoke_grant(record.grant)
    return jsonify({})


@bp.route("/slack/api/auth.revoke", methods=["POST"])
def slack_revoke() -> Response:
    """Slack's own shape: the token authenticates itself, and the answer is ok:true/false at 200."""
    server = _server("slack")
    presented = _bearer() or request.form.get("token", "")
    record = server.lookup(presented) if presented else None
    if record is None or record.is_revoked():
        return jsonify(ok=False, error="invalid_auth")
    server.revoke_grant(record.grant)
    return jsonify(ok=True, revoked=True)


@bp.route("/<provider>/.well-known/oauth-authorization-server")
def metadata(provider: str) -> Response:
    """RFC 8414 metadata, saying that authorization responses carry `iss` (RFC 9207)."""
    server = _server(provider)
    endpoints = wiring.provider_endpoints(current_app.config["SANDBOX_BASE_URL"], server.provider)
    return jsonify(
        issuer=server.issuer, authorization_endpoint=endpoints["authorization_url"],
        token_endpoint=endpoints["token_url"], revocation_endpoint=endpoints.get("revocation_url"),
        response_types_supported=["code"], grant_types_supported=["authorization_code", "refresh_token"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=[server.provider.token_auth.value],
        revocation_endpoint_auth_methods_supported=[TokenAuth.BASIC.value, TokenAuth.POST.value],
        scopes_supported=[s.name for s in server.provider.scopes],
        authorization_response_iss_parameter_supported=True,
    )


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass(frozen=True)
class Access:
    grant: Grant
    scopes: frozenset[str]


def bearer_access(provider: str) -> Access | None:
    """The live grant behind the request's access token for this provider, or None."""
    presented = _bearer()
    if presented is None:
        return None
    record = _server(provider).lookup(presented)
    if record is None or record.token.kind != "access" or record.is_revoked() or record.is_expired():
        return None
    return Access(record.grant, frozenset(PROVIDERS[provider].granted_closure(record.grant.scopes)))

