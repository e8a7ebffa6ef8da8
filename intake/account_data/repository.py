"""Reading everything of one client for its export, and what its pages show of notices and
credential use. Every function takes the client's tenant connection and names the client."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, fetch_all, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))
# The export's sections, in order: (key in the archive, query).
EXPORT_SECTIONS = (
    ("users", "export_users"),
    ("account_emails", "export_account_emails"),
    ("second_factors", "export_second_factors"),
    ("recovery_codes", "export_recovery_codes"),
    ("passkeys", "export_passkeys"),
    ("automations", "export_automations"),
    ("automation_versions", "export_automation_versions"),
    ("connections", "export_connections"),
    ("runs", "export_runs"),
    ("run_steps", "export_run_steps"),
    ("cost_events", "export_cost_events"),
    ("monthly_costs", "export_monthly_costs"),
    ("chat_drafts", "export_chat_drafts"),
    ("chat_messages", "export_chat_messages"),
    ("notifications", "export_notifications"),
    ("credential_access", "export_credential_access"),
)
NOTICE_DAYS = 30
NOTICE_LIMIT = 10
USAGE_LIMIT = 50


def export_client(conn: Connection, *, client_id: uuid.UUID) -> dict[str, Any] | None:
    """The client row the export opens with; inside the export's own transaction."""
    return fetch_optional(conn, QUERIES["export_client"], client_id=client_id)


def recent_notices(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["recent_notices"], client_id=client_id, days=NOTICE_DAYS, limit=NOTICE_LIMIT)


def connection_usage(conn: Connection, *, client_id: uuid.UUID, connection_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["connection_usage"], client_id=client_id, connection_id=connection_id,
                     limit=USAGE_LIMIT)
