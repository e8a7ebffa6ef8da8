"""Connection health: tokens refreshed ahead of a scheduled run, idle refresh tokens proven.

A scheduled sweep (agent_service/jobs.py) picks the active OAuth connections that are due:
those whose access token expires before an enabled automation that needs the provider is
next due, and those whose refresh token has not been proven for PROVE_REFRESH_EVERY. Each
is refreshed through the single-flight refresh runs use too (tokens.py; the rotated refresh token
saved in the same transaction). A provider that fails is counted at most once a day, and
only after failures on BROKEN_AFTER_DAYS distinct days is the connection declared broken,
so an outage of a few hours never makes a client reconnect; a provider that refuses the
grant itself (invalid_grant) breaks it at once, as in a run. A connection that works again
says so: its failing reason is cleared and its count reset.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent_service.connections import repository
from agent_service.connections.lifecycle import pause_dependents
from agent_service.connections.provider_oauth import ProviderRejected, TransientProviderError
from agent_service.connections.tokens import ReconnectNeeded, ensure_access_token
from agent_service.runtime import AgentRuntime
from agent_service.vault import Accessor
from shared.catalog import CAPABILITIES, Provider
from shared.db import QuerySet, execute, fetch_all, fetch_optional, tenant_transaction

logger = logging.getLogger(__name__)
QUERIES = QuerySet(Path(__file__).with_name("health.sql"))

BROKEN_AFTER_DAYS = 4
# Sweeps run every ten minutes: a token is refreshed when a run needing it is due within two.
EXPIRY_HORIZON = timedelta(minutes=20)
PROVE_REFRESH_EVERY = timedelta(days=7)
RETRY_FAILED_AFTER = timedelta(hours=1)
# status_reason while a provider fails but the connection still counts as working.
FAILING_REASON = "provider_unavailable"
# status_reason once the failures have lasted BROKEN_AFTER_DAYS distinct days.
BROKEN_REASON = "provider_failing_for_days"


class Outcome(StrEnum):
    REFRESHED = "refreshed"
    RECOVERED = "recovered"
    FAILED = "failed"
    BROKEN = "broken"
    NEEDS_REAUTH = "needs_reauth"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class DueConnection:
    """A connection the sweep will refresh, and why: 'expiring' or 'unproven'."""

    client_id: uuid.UUID
    connection_id: uuid.UUID
    provider: str
    access_token_expires_at: datetime | None
    reason: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DueConnection:
        return cls(row["client_id"], row["connection_id"], row["provider"], row["access_token_expires_at"],
                   row["reason"])


def connections_due(rt: AgentRuntime, now: datetime, *, limit: int = 200) -> list[DueConnection]:
    """Across clients, the connections due a refresh at `now` (ids and times only)."""
    capabilities = sorted(CAPABILITIES)
    with rt.db.transaction() as conn:
        rows = fetch_all(
            conn, QUERIES["due_for_check"], expiring_before=now + EXPIRY_HORIZON,
            unproven_before=now - PROVE_REFRESH_EVERY, retry_after=now - RETRY_FAILED_AFTER,
            capabilities=capabilities, capability_providers=[CAPABILITIES[key].provider for key in capabilities],
            limit=limit,
        )
    return [DueConnection.from_row(row) for row in rows]


def sweep_connections(rt: AgentRuntime, *, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Check every connection that is due; how many ended in each outcome."""
    now = now or datetime.now(UTC)
    outcomes: Counter[str] = Counter()
    for due in connections_due(rt, now, limit=limit):
        try:
            outcomes[check_connection(rt, due, now=now)] += 1
        except Exception:
            # One connection's defect (a key this agent lacks, say) must not stop the others.
            logger.exception("connection health check failed", extra={
                "client_id": due.client_id, "connection_id": due.connection_id, "provider": due.provider})
            outcomes[Outcome.ERROR] += 1
    if outcomes:
        summary = " ".join(f"{outcome}={count}" for outcome, count in sorted(outcomes.items()))
        logger.info("connection health sweep done", extra={"count": sum(outcomes.values()), "status": summary})
    return dict(outcomes)


def check_connection(rt: AgentRuntime, due: DueConnection, *, now: datetime) -> Outcome:
    """Refresh one connection's tokens and record what that says about its health."""
    provider = rt.provider(due.provider)
    log = {"client_id": due.client_id, "connection_id": due.connection_id, "provider": provider.key}
    try:
        # Forced, but a token someone else refreshed since it was listed counts as done.
        ensure_access_token(rt, client_id=due.client_id, connection_id=due.connection_id, provider=provider,
                            force=True, seen_expiry=due.access_token_expires_at,
                            accessor=Accessor("worker", reason="health_check"))
    except ReconnectNeeded as refused:
        if refused.reason != "invalid_grant":
            # No longer active, or this deployment has no OAuth client for the provider.
            logger.info("connection health check skipped", extra={**log, "status": refused.reason})
            return Outcome.SKIPPED
        with tenant_transaction(rt.db, due.client_id) as conn:
            pause_dependents(conn, provider)
        logger.warning("connection refused by its provider; client must reconnect", extra=log)
        return Outcome.NEEDS_REAUTH
    except (TransientProviderError, ProviderRejected) as failure:
        return _record_failure(rt, due, provider, now, type(failure).__name__)
    return _record_success(rt, due, now)


def _record_success(rt: AgentRuntime, due: DueConnection, now: datetime) -> Outcome:
    with tenant_transaction(rt.db, due.client_id) as conn:
        before = fetch_optional(conn, QUERIES["lock_health"], connection_id=due.connection_id)
        if before is None or before["status"] != "active":
            return Outcome.SKIPPED
        execute(conn, QUERIES["record_success"], connection_id=due.connection_id, now=now,
                failing_reason=FAILING_REASON)
    if before["health_failures"]:
        logger.info("connection recovered", extra={"client_id": due.client_id, "connection_id": due.connection_id,
                                                   "provider": due.provider, "count": before["health_failures"]})
        return Outcome.RECOVERED
    return Outcome.REFRESHED


def _record_failure(rt: AgentRuntime, due: DueConnection, provider: Provider, now: datetime,
                    error_class: str) -> Outcome:
    log = {"client_id": due.client_id, "connection_id": due.connection_id, "provider": provider.key,
           "error_class": error_class}
    with tenant_transaction(rt.db, due.client_id) as conn:
        row = fetch_optional(conn, QUERIES["record_failure"], connection_id=due.connection_id,
                             today=now.astimezone(UTC).date(), now=now, error_class=error_class,
                             failing_reason=FAILING_REASON)
        if row is None:
            return Outcome.SKIPPED
        failures = int(row["health_failures"])
        broken = failures >= BROKEN_AFTER_DAYS
        if broken:
            repository.mark_needs_reauth(conn, connection_id=due.connection_id, reason=BROKEN_REASON)
            pause_dependents(conn, provider)
    if broken:
        logger.warning("connection declared broken after failing on several days; client must reconnect",
                       extra={**log, "count": failures})
        return Outcome.BROKEN
    logger.info("connection refresh failed; counted for today", extra={**log, "count": failures})
    return Outcome.FAILED
