"""What the catalog is made of: providers, scopes and capabilities."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from marshmallow import Schema


class AuthKind(StrEnum):
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    # Hapex's own account with a sub-processor (Anthropic): no client credential at all.
    HAPEX_KEY = "hapex_key"


class TokenAuth(StrEnum):
    """How the client authenticates at the provider's token endpoint (RFC 6749 2.3.1)."""

    POST = "client_secret_post"
    BASIC = "client_secret_basic"


class TokenRequest(StrEnum):
    """How the token endpoint wants its parameters: RFC 6749's form encoding, or a JSON body (Notion)."""

    FORM = "form"
    JSON = "json"


class Revocation(StrEnum):
    """How a provider revokes a token; NONE means it offers no revocation call.

    RFC7009 and NOTION authenticate the client as its token endpoint does (RFC 7009 2.1);
    SLACK's auth.revoke is authorised by the token being revoked itself.
    """

    RFC7009 = "rfc7009"
    SLACK = "slack_auth_revoke"
    NOTION = "notion_revoke"
    NONE = "none"


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Scope:
    """One OAuth scope, whether it reads or writes, and what Hapex uses it for."""

    name: str
    access: Access
    purpose: str
    # Narrower scopes this one already grants; asking for both would be asking twice.
    implies: frozenset[str] = frozenset()
    # Scopes that must not be held at the same time (Gmail refuses search queries on a
    # token that also carries gmail.metadata).
    conflicts_with: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Provider:
    """A service a client connects, with its OAuth endpoints (a deployment may override them)."""

    key: str
    name: str
    auth_kind: AuthKind
    description: str = ""
    authorization_url: str | None = None
    token_url: str | None = None
    revocation_url: str | None = None
    issuer: str | None = None
    api_base_url: str | None = None
    scopes: tuple[Scope, ...] = ()
    # Scopes every consent asks for regardless of the automation (e.g. offline_access).
    base_scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    # Extra authorization parameters, e.g. access_type=offline for a refresh token.
    authorization_params: Mapping[str, str] = field(default_factory=dict)
    # Where the provider documents how a client can review or remove access.
    manage_access_url: str | None = None
    token_auth: TokenAuth = TokenAuth.POST
    token_request: TokenRequest = TokenRequest.FORM
    revocation: Revocation = Revocation.NONE
    # The error codes with which the provider documents "this token is unknown or already
    # invalid" at revocation; only these (and success) count as revoked, nothing else does.
    revocation_token_unknown: frozenset[str] = frozenset()
    # RFC 9207: the provider puts `iss` in every authorization response, so one without it is refused.
    sends_issuer: bool = False
    # Authorization parameters that merge a widening consent with the grant the provider already
    # holds (Google's incremental authorization); used only when no granted scope is unused.
    incremental_authorization_params: Mapping[str, str] = field(default_factory=dict)
    # Headers every call to the provider's API carries (Notion's API version).
    api_headers: Mapping[str, str] = field(default_factory=dict)
    # Steps Hapex does itself (conditions): no account, no call, nothing sent anywhere.
    built_in: bool = False

    @property
    def env_prefix(self) -> str:
        return f"HAPEX_{self.key.upper()}"

    def scope(self, name: str) -> Scope:
        for scope in self.scopes:
            if scope.name == name:
                return scope
        raise KeyError(f"{self.key} has no scope {name!r}")

    def granted_closure(self, granted: Iterable[str]) -> set[str]:
        """What granted scopes allow, counting the narrower scopes each implies: one rule for runs and consent."""
        closure = set(granted)
        for scope in self.scopes:
            if scope.name in closure:
                closure |= scope.implies
        return closure

    def with_endpoints(self, endpoints: Mapping[str, str]) -> Provider:
        """The provider with some of its ENDPOINT_FIELDS replaced (a local stand-in, a sandbox)."""
        unknown = set(endpoints) - set(ENDPOINT_FIELDS)
        if unknown:
            raise ValueError(f"not an endpoint of a provider: {sorted(unknown)}")
        if not endpoints:
            return self
        return replace(
            self,
            authorization_url=endpoints.get("authorization_url", self.authorization_url),
            token_url=endpoints.get("token_url", self.token_url),
            revocation_url=endpoints.get("revocation_url", self.revocation_url),
            api_base_url=endpoints.get("api_base_url", self.api_base_url),
            issuer=endpoints.get("issuer", self.issuer),
        )


# What a deployment may point elsewhere, each from HAPEX_<KEY>_<FIELD> in the services' configuration.
ENDPOINT_FIELDS = ("authorization_url", "token_url", "revocation_url", "api_base_url", "issuer")


@dataclass(frozen=True)
class ResolvedCatalog:
    """The providers as this deployment sets them up, resolved once at start from its configuration:
    endpoint overrides applied, and Hapex's OAuth client id at each provider that has one (never a secret)."""

    providers: Mapping[str, Provider]
    client_ids: Mapping[str, str] = field(default_factory=dict)

    def provider(self, key: str) -> Provider:
        return self.providers[key]

    def client_id(self, key: str) -> str | None:
        """Hapex's client id at an OAuth provider; None means it is not configured here."""
        return self.client_ids.get(key)

    def is_available(self, key: str) -> bool:
        """OAuth providers need a client id; API-key and Hapex-key providers are always there."""
        if self.providers[key].auth_kind is AuthKind.OAUTH2:
            return self.client_id(key) is not None
        return True

    def has_oauth_client(self) -> bool:
        return any(self.is_available(key) for key, p in self.providers.items() if p.auth_kind is AuthKind.OAUTH2)


@dataclass(frozen=True)
class Capability:
    """A step an automation can take: its provider, the narrowest scopes, its schemas."""

    key: str
    provider: str
    title: str
    description: str
    access: Access
    scopes: tuple[str, ...]
    input_schema: type[Schema]
    output_schema: type[Schema]
    # A step whose effect outside Hapex must not happen twice (sending, appending, creating).
    side_effect: bool = False
    # Uses Hapex's LLM sub-processor; emits a cost event per call.
    billable_llm: bool = False

    @property
    def name(self) -> str:
        return self.key

    @property
    def summary(self) -> str:
        return self.title

    @property
    def input_checker(self) -> Schema:
        """One shared input_schema instance for the run engine's loads (building one per step cost ~0.1 ms)."""
        return _shared_instance(self.input_schema)

    @property
    def output_checker(self) -> Schema:
        """One shared output_schema instance, as input_checker."""
        return _shared_instance(self.output_schema)


@functools.cache
def _shared_instance(schema: type[Schema]) -> Schema:
    """A schema instance reused across calls and threads: marshmallow 4 schemas keep no state between
    loads (no context), and the catalog's schemas set none of their own."""
    return schema()


@dataclass(frozen=True)
class PollTrigger:
    """"When something new arrives": a provider source polled for new items, one run per item.

    The scopes are read-only and the narrowest the poll and the item's fields need; `options` is
    what the client sets (a search, a sheet), `item_fields` what a run gets as trigger.<field>.
    """

    key: str
    provider: str
    title: str
    description: str
    scopes: tuple[str, ...]
    options_schema: type[Schema]
    item_fields: type[Schema]

    @property
    def in_a_sentence(self) -> str:
        """The title inside a sentence ("once for each new email in Gmail"): its first letter lowered, names kept."""
        return self.title[:1].lower() + self.title[1:]
