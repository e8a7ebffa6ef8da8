"""The credential vault: the only code in Hapex that can encrypt or decrypt a secret.

Nothing in intake/ or shared/ may import it (tests/unit/test_vault_import_graph.py).
"""

from agent_service.vault.keyring import Keyring, Purpose
from agent_service.vault.service import (
    Accessor,
    ConnectionNotFound,
    CredentialKeyMissing,
    CredentialNotFound,
    CredentialUnreadable,
    SecretExpired,
    StepSecret,
    Vault,
    VaultError,
)
from agent_service.vault.startup import (
    MissingCredentialKeys,
    VaultStartupError,
    check_agent_can_start,
    get_vault,
    open_vault,
)

__all__ = [
    "Accessor",
    "ConnectionNotFound",
    "CredentialKeyMissing",
    "CredentialNotFound",
    "CredentialUnreadable",
    "Keyring",
    "MissingCredentialKeys",
    "Purpose",
    "SecretExpired",
    "StepSecret",
    "Vault",
    "VaultError",
    "VaultStartupError",
    "check_agent_can_start",
    "get_vault",
    "open_vault",
]
