"""Access tokens for steps: refreshed shortly before they expire, by one worker at a time.

The connection row is the lock: a worker that finds the token expiring locks the row,
re-reads the expiry (another worker may have refreshed it meanwhile), refreshes at the
provider, and saves the new access token, a rotated refresh token and the expiry in the
same transaction. The others wait on the lock and then find a fresh token.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from agent_service.connections import repository
from agent_service.connections.provider_oauth import InvalidGrant, refresh_access_token
from agent_service.runtime import AgentRuntime
from agent_service.vault import Accessor, CredentialNotFound, CredentialUnreadable, Purpose
from shared.catalog import Provider
from shared.db import tenant_transaction
from shared.errors import HapexError

logger = logging.getLogger(__name__)


class ReconnectNeeded(HapexError):
    name = "reconnect_needed"
    message = "The provider no longer accepts this connection; the client must reconnect it."

    def __init__(self, reason: str = "invalid_grant") -> None:
        self.reason = reason
        super().__init__()


def ensure_access_token(rt: AgentRuntime, *, client_id: uuid.UUID, connection_id: uuid.UUID, provider: Provider,
                        force: bool = False, seen_expiry: datetime | None = None,
                        accessor: Accessor | None = None) -> bool:
    """Refresh the connection's access token if it expires soon (or `force`); True if refreshed.

    With `force` (the provider answered 401), a token refreshed by someone else since the
    caller read `seen_expiry` counts as done. `accessor` (which run and step, or the health
    sweep) is what the credential access audit records for the refresh token's decryption.
    """
    client = rt.oauth_clients.get(provider.key)
    invalid = False
    refreshed = False
    with tenant_transaction(rt.db, client_id) as conn:
        row = repository.lock_connection_expiry(conn, connection_id=connection_id)
        if row is None or row["status"] != "active":
            raise ReconnectNeeded("not_active")
        expires_at = row["access_token_expires_at"]
        margin = timedelta(seconds=rt.limits.refresh_margin_seconds)
        if force:
            if seen_expiry is not None and expires_at is not None and expires_at != seen_expiry:
                return False
        elif expires_at is None or expires_at > datetime.now(UTC) + margin:
            return False
        if client is None:
            raise ReconnectNeeded("provider_not_configured")
        try:
            with rt.vault.open_in_transaction(conn, client_id=client_id, connection_id=connection_id,
                                              purpose=Purpose.REFRESH_TOKEN,
                                              accessor=accessor or Accessor("worker", reason="token_refresh"),
                                              ) as refresh_token:
                tokens = refresh_access_token(provider, client, refresh_token=refresh_token, verify=rt.verify)
        except (CredentialNotFound, CredentialUnreadable, InvalidGrant):
            invalid = True
        if invalid:
            repository.mark_needs_reauth(conn, connection_id=connection_id, reason="invalid_grant")
        else:
            rt.vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.ACCESS_TOKEN,
                           secret=tokens.access_token)
            if tokens.refresh_token is not None:
                rt.vault.store(conn, client_id=client_id, connection_id=connection_id,
                               purpose=Purpose.REFRESH_TOKEN, secret=tokens.refresh_token)
            repository.save_refreshed_expiry(conn, connection_id=connection_id, expires_at=tokens.expires_at)
            refreshed = True
    # Committed: a connection found invalid stays marked even though the step fails.
    if invalid:
        logger.warning("refresh refused: connection needs reauthorisation",
                       extra={"client_id": client_id, "connection_id": connection_id, "provider": provider.key})
        raise ReconnectNeeded()
    logger.info("access token refreshed", extra={"client_id": client_id, "connection_id": connection_id,
                                                 "provider": provider.key})
    return refreshed
