"""What the catalog is made of: providers, scopes and capabilities."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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


class Revocation(StrEnum):
    """How a provider revokes a token; NONE means it offers no revocation call."""

    RFC7009 = "rfc7009"
    SLACK = "slack_auth_revoke"
    HUBSPOT = "hubspot_delete_refresh_token"
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
    """A service a client connects, with its OAuth endpoints (overridable from the env)."""

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
    revocation: Revocation = Revocation.NONE

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

    def with_environment(self, environ: Mapping[str, str] | None = None) -> Provider:
        """The provider with endpoints and issuer overridden by HAPEX_<KEY>_* variables."""
        environ = os.environ if environ is None else environ
        overrides: dict[str, Any] = {}
        for attribute in ("authorization_url", "token_url", "revocation_url", "api_base_url", "issuer"):
            value = environ.get(f"{self.env_prefix}_{attribute.upper()}", "").strip()
            if value:
                overrides[attribute] = value
        if not overrides:
            return self
        from dataclasses import replace

        return replace(self, **overrides)

    def client_id(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The OAuth client id from HAPEX_<KEY>_CLIENT_ID; None means not configured."""
        environ = os.environ if environ is None else environ
        return environ.get(f"{self.env_prefix}_CLIENT_ID", "").strip() or None

    def is_available(self, environ: Mapping[str, str] | None = None) -> bool:
        """OAuth providers need a client id; API-key and Hapex-key providers are always there."""
        if self.auth_kind is AuthKind.OAUTH2:
            return self.client_id(environ) is not None
        return True


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
