"""What an automation needs from each provider, against what the client's connections granted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.catalog import CATALOG, Catalog, Provider, required_providers, required_scopes


@dataclass(frozen=True)
class NeededScope:
    name: str
    access: str
    purpose: str
    granted: bool


@dataclass(frozen=True)
class ProviderNeed:
    """One provider an automation uses: its scopes, and whether the client has granted them."""

    provider: Provider
    scopes: tuple[NeededScope, ...]
    connection_status: str | None  # None: never connected (or revoked)

    @property
    def connected(self) -> bool:
        return self.connection_status == "active"

    @property
    def missing(self) -> tuple[NeededScope, ...]:
        return tuple(scope for scope in self.scopes if not scope.granted)

    @property
    def ready(self) -> bool:
        return self.connected and not self.missing

    @property
    def problem(self) -> str:
        """What stands in the way, in the client's words."""
        if self.connection_status is None:
            return "not connected"
        if self.connection_status == "needs_reauth":
            return "needs reconnecting"
        if self.connection_status != "active":
            return f"connection {self.connection_status.replace('_', ' ')}"
        return "access missing: " + ", ".join(scope.name for scope in self.missing)

    @property
    def action(self) -> str | None:
        """The button to offer: connect, reconnect or grant what is missing; None when ready."""
        if self.connection_status is None:
            return "Connect"
        if self.connection_status == "needs_reauth":
            return "Reconnect"
        if self.missing:
            return "Grant missing access"
        return None


def provider_needs(steps: Iterable[Mapping[str, Any]], connections: Mapping[str, Mapping[str, Any]],
                   catalog: Catalog = CATALOG, trigger: Mapping[str, Any] | None = None) -> list[ProviderNeed]:
    """Per provider the steps and the trigger use (not Hapex's own), the minimal scopes and what is granted."""
    steps = list(steps)
    scopes_by_provider = required_scopes(steps, trigger)
    needs = []
    for key in required_providers(steps, trigger):
        provider = catalog.provider(key)
        connection = connections.get(key)
        granted = provider.granted_closure(connection["scopes_granted"]) if connection else set()
        scopes = tuple(
            NeededScope(name, provider.scope(name).access.value, provider.scope(name).purpose, name in granted)
            for name in scopes_by_provider.get(key, ())
        )
        status = None if connection is None else str(connection["status"])
        needs.append(ProviderNeed(provider, scopes, status))
    return needs
