"""/account/export, and the notices and credential use that the client's pages show.

The export is read through the signed-in client's tenant transaction as the intake role,
which cannot read a credential's ciphertext, nonce or key id at all: the archive holds
connections as metadata only. Stored step outputs (only where the client turned storing
on) are opened by the agent and added as they read, never their ciphertext. Notices and
credential use are template globals, so the pages that show them (automations, a
connection) need no change to their views.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.wsgi import wrap_file

from intake.account_data import repository
from intake.account_data.export import spool_export
from intake.agent_client import AgentError, OutputsCursor
from intake.db import get_agent, get_db
from shared.db import fetch_all, tenant_transaction

logger = logging.getLogger(__name__)

blueprint = Blueprint("account_data", __name__)
OUTPUTS_PAGE = 500


@blueprint.get("/account/export")
def export() -> ResponseReturnValue:
    """Everything Hapex holds about the signed-in client, as one JSON file to download."""
    client_id = g.identity.client_id
    with tenant_transaction(get_db(), client_id) as conn:
        automations = fetch_all(conn, repository.QUERIES["export_automations"], client_id=client_id)
    try:
        stored_outputs = _stored_outputs(client_id, automations)
    except AgentError:
        # An export that says "everything" must not quietly leave the stored outputs out.
        return render_template("error.html", status=503, title="Export unavailable",
                               message="Your stored step outputs could not be read just now, so no export was "
                                       "made. Try again in a minute."), 503
    exported_at = datetime.now(UTC)
    logger.info("account data exported", extra={"client_id": client_id, "user_id": g.identity.user_id})
    # Streamed into a spooled file a batch of rows at a time, so a client with a million runs costs the
    # intake no more memory than one with ten; the download reads the file, holding no connection.
    spool = spool_export(get_db(), client_id, exported_at=exported_at, stored_outputs=stored_outputs)
    response = Response(wrap_file(request.environ, spool), mimetype="application/json", direct_passthrough=True)
    response.headers["Content-Disposition"] = f'attachment; filename="hapex-export-{exported_at:%Y-%m-%d}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _stored_outputs(client_id: uuid.UUID, automations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every stored step output, opened by the agent (the intake cannot decrypt them), a page at
    a time. Only automations that store outputs have any: turning the switch off forgets them."""
    if not any(automation["store_outputs"] for automation in automations):
        return []
    collected: list[dict[str, Any]] = []
    after: OutputsCursor | None = None
    while True:
        page = get_agent().client_outputs(client_id, after=after, limit=OUTPUTS_PAGE)
        collected += page.outputs
        if page.next is None:
            return collected
        after = page.next


def _signed_in_client() -> uuid.UUID | None:
    identity = g.get("identity")
    return None if identity is None else identity.client_id


@blueprint.app_template_global()
def provider_display_name(key: str | None) -> str:
    known = {p.key: p for p in current_app.extensions["hapex_catalog"].providers}
    provider = known.get(key or "")
    return provider.name if provider is not None else (key or "A connected service")


@blueprint.app_template_global()
def recent_notices() -> list[dict[str, Any]]:
    """The signed-in client's notices of the last 30 days, newest first."""
    client_id = _signed_in_client()
    if client_id is None:
        return []
    with tenant_transaction(get_db(), client_id) as conn:
        return repository.recent_notices(conn, client_id=client_id)


@blueprint.app_template_global()
def connection_usage(connection_id: uuid.UUID) -> list[dict[str, Any]]:
    """When the signed-in client's connection was last decrypted, and for which runs (last 50)."""
    client_id = _signed_in_client()
    if client_id is None:
        return []
    with tenant_transaction(get_db(), client_id) as conn:
        return repository.connection_usage(conn, client_id=client_id, connection_id=connection_id)
