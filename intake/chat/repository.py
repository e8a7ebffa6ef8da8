"""Drafts and their messages, read and written in the signed-in client's tenant transaction.

Messages are customer data: they are stored here and shown to their client, never logged.
Approval is the only path from a draft to an automation, through shared.automations, which
validates the definition against the catalog again.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from shared.automations import repository as definitions
from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection
from shared.errors import HapexError

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))
RECENT_DRAFTS = 100


class ProposalChanged(HapexError):
    name = "proposal_changed"
    status = 409
    message = "The proposal changed since the page was shown; review the new one before approving."


class NoProposal(HapexError):
    name = "no_proposal"
    status = 409
    message = "There is no proposal to approve yet."


def create_draft(conn: Connection, *, client_id: uuid.UUID) -> uuid.UUID:
    row = fetch_one(conn, QUERIES["insert_draft"], client_id=client_id, draft_id=uuid.uuid4())
    return row["draft_id"]  # type: ignore[no-any-return]  # psycopg's dict rows hold Any


def get_draft(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_draft"], client_id=client_id, draft_id=draft_id)


def list_drafts(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_drafts"], client_id=client_id, limit=RECENT_DRAFTS)


def list_messages(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_messages"], client_id=client_id, draft_id=draft_id)


def add_message(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID, role: str, content: str) -> None:
    execute(conn, QUERIES["insert_message"], client_id=client_id, draft_id=draft_id, role=role, content=content)
    execute(conn, QUERIES["touch_draft"], client_id=client_id, draft_id=draft_id)


def save_proposal(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID, automation: dict[str, Any],
                  summary: str, prompt_version: str) -> int:
    row = fetch_one(conn, QUERIES["save_proposal"], client_id=client_id, draft_id=draft_id,
                    proposal=Jsonb(automation), summary=summary, prompt_version=prompt_version)
    return int(row["proposal_revision"])


def approve(conn: Connection, *, client_id: uuid.UUID, draft_id: uuid.UUID, revision: int) -> tuple[uuid.UUID, bool]:
    """Save the shown proposal as an automation (a new one, or the next version of the approved one).

    Returns the automation id and whether it was created. Raises NoProposal, ProposalChanged, or
    InvalidAutomation (writing nothing) when the catalog no longer accepts the proposal.
    """
    draft = fetch_optional(conn, QUERIES["lock_draft"], client_id=client_id, draft_id=draft_id)
    if draft is None or draft["proposal"] is None:
        raise NoProposal()
    if draft["proposal_revision"] != revision:
        raise ProposalChanged()
    automation_id = draft["automation_id"]
    if automation_id is not None and draft["approved_revision"] == revision:
        return automation_id, False
    current = None if automation_id is None else definitions.get_automation(conn, automation_id=automation_id)
    if current is None or current["status"] == "deleted":
        # Deleted since its last approval (its run records kept, hidden): a new automation, never a
        # new version of the deleted one, which would stay hidden and could not be opened.
        automation_id = definitions.create_automation(conn, client_id=client_id, definition=draft["proposal"])
        created = True
    else:
        # The chat never decides whether outputs are stored: the client's own switch stands
        # (saving it off would also forget every output stored so far).
        definitions.update_automation(conn, client_id=client_id, automation_id=automation_id,
                                      definition={**draft["proposal"], "store_outputs": current["store_outputs"]})
        created = False
    execute(conn, QUERIES["mark_approved"], client_id=client_id, draft_id=draft_id, automation_id=automation_id,
            revision=revision)
    return automation_id, created
