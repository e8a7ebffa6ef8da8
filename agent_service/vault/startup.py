"""The start-up check: a wrong or lost key is found at deploy time, not in a client's run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import psycopg
from flask import Flask, current_app
from psycopg_pool import PoolTimeout

from agent_service.vault import outputs, repository, totp
from agent_service.vault.keyring import RETIRED_VARIABLE, Keyring
from agent_service.vault.service import Vault
from agent_service.vault.usage import USAGE_WARNING_AT, warn_about_usage
from shared.db import Database, DatabaseError
from shared.errors import HapexError

if TYPE_CHECKING:
    from agent_service.config import AgentConfig

logger = logging.getLogger(__name__)

EXTENSION = "hapex_vault"


class VaultStartupError(HapexError, RuntimeError):
    name = "vault_startup_failed"
    message = "The agent cannot start: its credential keys do not fit the database."


def _rows(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class MissingCredentialKeys(VaultStartupError):
    name = "credential_keys_not_held"
    message = "The database holds credentials under key ids this agent does not have"

    def __init__(self, missing: Mapping[str, int], keyring: Keyring,
                 missing_outputs: Mapping[str, int] | None = None,
                 missing_secrets: Mapping[str, int] | None = None) -> None:
        missing_outputs = dict(missing_outputs or {})
        missing_secrets = dict(missing_secrets or {})
        self.missing = {kid: missing.get(kid, 0) + missing_outputs.get(kid, 0) + missing_secrets.get(kid, 0)
                        for kid in sorted(set(missing) | set(missing_outputs) | set(missing_secrets))}
        listed = ", ".join(
            f"{kid} ("
            + ", ".join(part for part in (
                _rows(missing[kid], "credential") if missing.get(kid) else "",
                _rows(missing_outputs[kid], "stored output") if missing_outputs.get(kid) else "",
                _rows(missing_secrets[kid], "TOTP secret") if missing_secrets.get(kid) else "",
            ) if part)
            + ")"
            for kid in self.missing
        )
        super().__init__(
            f"{self.message}: {listed}. Add the key(s) with these ids to "
            f"{RETIRED_VARIABLE} (this agent holds {keyring.describe()})."
        )


class KeyCheckUnavailable(VaultStartupError):
    name = "key_check_unavailable"
    message = "The database is unavailable, so the credential keys could not be checked."


class VaultSchemaMissing(VaultStartupError):
    name = "vault_schema_missing"
    message = "The database lacks the vault's functions; run `hapex db migrate` first."


def check_credential_keys(database: Database, keyring: Keyring) -> dict[str, int]:
    """Sealed rows (credentials, stored step outputs and TOTP secrets) per key id;
    MissingCredentialKeys if any key id is not held."""
    try:
        with database.transaction() as conn:
            credentials = repository.key_census(conn)
            stored_outputs = outputs.key_census(conn)
            secrets = totp.key_census(conn)
            usage = repository.key_usage(conn, key_id=keyring.primary_key_id)
    except psycopg.errors.UndefinedFunction:
        raise VaultSchemaMissing() from None
    except DatabaseError:
        raise KeyCheckUnavailable() from None
    missing = {kid: count for kid, count in credentials.items() if kid not in keyring.key_ids}
    missing_outputs = {kid: count for kid, count in stored_outputs.items() if kid not in keyring.key_ids}
    missing_secrets = {kid: count for kid, count in secrets.items() if kid not in keyring.key_ids}
    if missing or missing_outputs or missing_secrets:
        raise MissingCredentialKeys(missing, keyring, missing_outputs, missing_secrets)
    census = {kid: credentials.get(kid, 0) + stored_outputs.get(kid, 0) + secrets.get(kid, 0)
              for kid in set(credentials) | set(stored_outputs) | set(secrets)}
    for kid in keyring.retired_key_ids:
        if census.get(kid):
            logger.info(
                "credentials, stored outputs or TOTP secrets still under a retired key; run `hapex credentials rotate`",
                extra={"key_id": kid, "count": census[kid]},
            )
        else:
            logger.info("retired key no longer used; it can be removed", extra={"key_id": kid})
    if usage >= USAGE_WARNING_AT:
        warn_about_usage(keyring.primary_key_id, usage)
    return census


def open_vault(config: AgentConfig, database: Database) -> Vault:
    """The process's vault, after checking every stored key id is one it holds."""
    keyring = Keyring.from_config(config)
    check_credential_keys(database, keyring)
    return Vault(keyring, database)


def check_agent_can_start(config: AgentConfig, *, timeout: float = 10.0) -> None:
    """What `hapex serve agent|worker` runs first, so a missing key fails the command."""
    database = Database(config.database_url, config.pool, name="hapex-keycheck")
    try:
        database.open(timeout=timeout)
    except (PoolTimeout, psycopg.OperationalError):
        raise KeyCheckUnavailable() from None
    try:
        open_vault(config, database)
    finally:
        database.close()


def install(app: Flask, vault: Vault) -> None:
    app.extensions[EXTENSION] = vault


def get_vault() -> Vault:
    """The vault of the running agent app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]  # Flask's app state holds Any
