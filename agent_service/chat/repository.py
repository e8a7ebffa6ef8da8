"""What the chat reads of a draft and the cost it records; every function takes a tenant connection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def get_draft_proposal(conn: Connection, *, draft_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_draft_proposal"], draft_id=draft_id)


def recent_messages(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID, limit: int
                    ) -> list[dict[str, Any]]:
    """The draft's latest `limit` messages, oldest first."""
    return fetch_all(conn, QUERIES["recent_messages"], client_id=client_id, draft_id=draft_id, limit=limit)


def insert_chat_cost_event(conn: Connection, *, client_id: uuid.UUID, model: str, input_tokens: int,
                           output_tokens: int, price_version: str, amount_microusd: int,
                           cache_creation_input_tokens: int = 0, cache_read_input_tokens: int = 0) -> None:
    execute(conn, QUERIES["insert_chat_cost_event"], client_id=client_id, model=model, input_tokens=input_tokens,
            output_tokens=output_tokens, cache_creation_input_tokens=cache_creation_input_tokens,
            cache_read_input_tokens=cache_read_input_tokens, price_version=price_version,
            amount_microusd=amount_microusd)
