"""Reading and marking the signed-in client's automations, runs and costs.

Every function but find_webhook takes a tenant connection; each query also names the
client, which keeps it on the client-led indexes and says plainly whose rows it touches.
Creating and editing definitions goes through shared.automations.repository, which
validates them against the catalog and records each version.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))
RECENT_RUNS = 100


def list_automations(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_automations"], client_id=client_id)


def get_automation(
    conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID
) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_automation"], client_id=client_id, automation_id=automation_id)


def set_webhook_secret_hash(
    conn: Connection, *, session_secret: str, automation_id: uuid.UUID, secret_hash: bytes | None
) -> bool:
    """Store (None: forget) the hash of its webhook secret; False unless the session is live and its client's."""
    row = fetch_one(conn, QUERIES["set_webhook_secret_hash"], session_secret=session_secret,
                    automation_id=automation_id, secret_hash=secret_hash)
    return bool(row["stored"])


def insert_webhook_reveal(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID, masked: bytes,
                          ttl: timedelta) -> uuid.UUID:
    row = fetch_one(conn, QUERIES["insert_webhook_reveal"], client_id=client_id, automation_id=automation_id,
                    masked=masked, ttl=ttl)
    return row["reveal_id"]  # type: ignore[no-any-return]  # psycopg's dict rows hold Any


def take_webhook_reveal(conn: Connection, *, client_id: uuid.UUID, reveal_id: uuid.UUID, automation_id: uuid.UUID,
                        ttl: timedelta) -> bytes | None:
    """The masked secret of a live reveal, deleted as it is read; None if gone, stale or not this automation's."""
    row = fetch_optional(conn, QUERIES["take_webhook_reveal"], client_id=client_id, reveal_id=reveal_id,
                         automation_id=automation_id, ttl=ttl)
    return bytes(row["masked"]) if row is not None and row["live"] else None


def find_webhook(conn: Connection, *, secret_hash: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(client_id, automation_id) of the enabled webhook automation with this secret, if any."""
    row = fetch_optional(conn, QUERIES["find_webhook"], secret_hash=secret_hash)
    return None if row is None else (row["client_id"], row["automation_id"])


def recent_webhook_runs(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID,
                        seconds: int) -> int:
    row = fetch_one(conn, QUERIES["recent_webhook_runs"], client_id=client_id, automation_id=automation_id,
                    seconds=seconds)
    return int(row["runs"])


def provider_connections(conn: Connection, *, client_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Per provider, the connection a run would use and the scopes it was granted."""
    rows = fetch_all(conn, QUERIES["provider_connections"], client_id=client_id)
    return {row["provider"]: row for row in rows}


def poll_waiting(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID) -> int:
    """New items a poll has seen and will start over its next polls (at most 25 a poll)."""
    return int(fetch_one(conn, QUERIES["poll_waiting"], client_id=client_id, automation_id=automation_id)["waiting"])


def list_runs(
    conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID | None = None,
    limit: int = RECENT_RUNS,
) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_runs"], client_id=client_id, automation_id=automation_id,
                     limit=limit)


def get_run(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_run"], client_id=client_id, run_id=run_id)


def list_run_steps(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_run_steps"], client_id=client_id, run_id=run_id)


def run_costs(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["run_costs"], client_id=client_id, run_id=run_id)


def costs_by_month(conn: Connection, *, client_id: uuid.UUID, since: datetime) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["costs_by_month"], client_id=client_id, since=since)


def costs_this_month(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["costs_this_month"], client_id=client_id)


def monthly_budget(conn: Connection, *, client_id: uuid.UUID) -> int | None:
    row = fetch_optional(conn, QUERIES["monthly_budget"], client_id=client_id)
    return None if row is None else row["monthly_budget_microusd"]


def delete_automation(conn: Connection, *, client_id: uuid.UUID, automation_id: uuid.UUID) -> None:
    execute(conn, QUERIES["delete_automation"], client_id=client_id, automation_id=automation_id)


def set_monthly_budget(conn: Connection, *, client_id: uuid.UUID, budget: int | None) -> None:
    execute(conn, QUERIES["set_monthly_budget"], client_id=client_id, budget=budget)
