"""The capability catalog: providers, their OAuth scopes, and the steps automations are made of.

The single source of truth for consent URLs, the data-and-privacy page and run-time scope
checks. Nothing here can decrypt or call a provider.
"""

from shared.catalog.model import (
    Access,
    AuthKind,
    Capability,
    Provider,
    Revocation,
    Scope,
    TokenAuth,
)
from shared.catalog.registry import (
    CAPABILITIES,
    CATALOG,
    PROVIDERS,
    Catalog,
    get_capability,
    get_provider,
    minimal_scopes,
    required_providers,
    required_scopes,
)

__all__ = [
    "CAPABILITIES",
    "CATALOG",
    "Catalog",
    "PROVIDERS",
    "Access",
    "AuthKind",
    "Capability",
    "Provider",
    "Revocation",
    "Scope",
    "TokenAuth",
    "get_capability",
    "get_provider",
    "minimal_scopes",
    "required_providers",
    "required_scopes",
]
