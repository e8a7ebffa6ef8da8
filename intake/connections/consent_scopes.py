"""What one consent asks a provider for: only what saved automations need and is not yet granted.

Pure functions over the catalog, so each rule of incremental consent is plain to read and
to test: no scope is asked for unless a saved automation of the client uses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.catalog import CAPABILITIES, Provider, minimal_scopes, required_scopes
from shared.errors import HapexError


class NothingToAsk(HapexError):
    name = "nothing_to_ask"
    status = 409
    message = "No saved automation needs this provider, so Hapex has nothing to ask it for."


class AlreadyGranted(HapexError):
    name = "already_granted"
    status = 409
    message = "The provider already granted everything the automations need."

    def __init__(self, connection_id: uuid.UUID) -> None:
        self.connection_id = connection_id
        super().__init__()


@dataclass(frozen=True)
class ConsentRequest:
    """The scopes to ask for, the connection they widen or renew, and extra parameters."""

    scopes: tuple[str, ...]
    connection_id: uuid.UUID | None
    authorization_params: Mapping[str, str]
    # Granted scopes no saved automation uses: the grant must be ended first (and the consent
    # ask afresh for what is needed), or merging consent would keep them alive unseen.
    end_grant_first: tuple[str, ...] = ()


def steps_of(automation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The steps of a saved automation whose capability the catalog knows."""
    steps = automation.get("steps") or []
    return [s for s in steps if isinstance(s, Mapping) and s.get("capability") in CAPABILITIES]


def needed_from(provider: Provider, automations: Iterable[Mapping[str, Any]]) -> tuple[str, ...] | None:
    """The minimal scopes these automations need from the provider; None if none uses it."""
    needed: set[str] = set()
    used = False
    for automation in automations:
        per_provider = required_scopes(steps_of(automation), automation.get("trigger"))
        if provider.key in per_provider:
            used = True
            needed.update(per_provider[provider.key])
    return minimal_scopes(provider.key, needed) if used else None


def missing_scopes(provider: Provider, needed: Sequence[str], granted: Iterable[str]) -> tuple[str, ...]:
    """What is needed and not yet granted, directly or through a wider scope."""
    closure = provider.granted_closure(granted)
    return tuple(sorted(set(needed) - closure))


def unused_scopes(provider: Provider, granted: Iterable[str], needed_by_all: Sequence[str] | None
                  ) -> tuple[str, ...]:
    """Granted scopes that no saved automation needs, directly or as a narrower scope they imply.

    A write scope kept after the only writing step was deleted is unused even when its read
    half is still needed: the read scope alone would do.
    """
    needed = provider.granted_closure(needed_by_all or ())
    return tuple(sorted(set(granted) - needed))


def _conflicting(provider: Provider, asked: Iterable[str], granted: Iterable[str]) -> set[str]:
    """Granted scopes that must not sit on one token with the ones asked for."""
    known = {scope.name: scope for scope in provider.scopes}
    held = set(granted)
    conflicts: set[str] = set()
    for name in asked:
        scope = known.get(name)
        if scope is not None:
            conflicts |= scope.conflicts_with & held
    return conflicts


def plan(
    provider: Provider,
    *,
    needed: tuple[str, ...] | None,
    needed_by_all: tuple[str, ...] | None,
    active: Mapping[str, Any] | None,
    reconnect: Mapping[str, Any] | None = None,
) -> ConsentRequest:
    """Decide what to ask for.

    `needed` is what the automation being connected needs from the provider (or, with no
    automation named, `needed_by_all`: what every saved automation of the client needs);
    `active` is the connection runs use today; `reconnect` a connection the client chose to
    renew. Raises NothingToAsk or AlreadyGranted when there is nothing to ask.
    """
    if needed is None or needed_by_all is None:
        raise NothingToAsk()
    if reconnect is not None:
        # Its grant is broken or being replaced: ask afresh for what the saved automations
        # need, without merging in whatever the provider still remembers.
        return ConsentRequest(needed_by_all, reconnect["connection_id"], {})
    if active is None:
        return ConsentRequest(needed, None, {})
    granted = list(active["scopes_granted"])
    missing = missing_scopes(provider, needed, granted)
    if not missing:
        raise AlreadyGranted(active["connection_id"])
    conflicts = _conflicting(provider, missing, granted)
    if conflicts:
        # Merging the old grant would put both scopes on one token (gmail.metadata beside
        # gmail.readonly makes Gmail refuse searches): ask, without merging, for what the
        # saved automations need, which the new scope covers.
        wanted = [name for name in {*needed_by_all, *missing} if name not in conflicts]
        return ConsentRequest(minimal_scopes(provider.key, wanted), active["connection_id"], {})
    unused = unused_scopes(provider, granted, needed_by_all)
    if unused and provider.incremental_authorization_params:
        # Merging would keep the unused scopes on the new token without the client seeing it: end
        # the grant first, then ask for exactly what the saved automations need.
        return ConsentRequest(needed_by_all, active["connection_id"], {}, end_grant_first=unused)
    return ConsentRequest(missing, active["connection_id"], provider.incremental_authorization_params)
