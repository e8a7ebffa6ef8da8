"""The capability catalog: providers, their OAuth scopes, and the steps automations are made of.

The single source of truth for consent URLs, the data-and-privacy page and run-time scope
checks. Nothing here can decrypt or call a provider.
"""

from shared.catalog.model import (
    ENDPOINT_FIELDS,
    Access,
    AuthKind,
    Capability,
    PollTrigger,
    Provider,
    ResolvedCatalog,
    Revocation,
    Scope,
    TokenAuth,
    TokenRequest,
)
from shared.catalog.registry import (
    CAPABILITIES,
    CATALOG,
    CONDITION,
    POLL_MAX_MINUTES,
    POLL_MIN_MINUTES,
    POLL_TRIGGERS,
    PROVIDERS,
    UNCONFIGURED,
    Catalog,
    get_capability,
    get_provider,
    minimal_scopes,
    poll_trigger_of,
    required_providers,
    required_scopes,
)

__all__ = [
    "CAPABILITIES",
    "CATALOG",
    "CONDITION",
    "Catalog",
    "ENDPOINT_FIELDS",
    "POLL_MAX_MINUTES",
    "POLL_MIN_MINUTES",
    "POLL_TRIGGERS",
    "PROVIDERS",
    "UNCONFIGURED",
    "Access",
    "AuthKind",
    "Capability",
    "PollTrigger",
    "Provider",
    "ResolvedCatalog",
    "Revocation",
    "Scope",
    "TokenAuth",
    "TokenRequest",
    "get_capability",
    "get_provider",
    "minimal_scopes",
    "poll_trigger_of",
    "required_providers",
    "required_scopes",
]
