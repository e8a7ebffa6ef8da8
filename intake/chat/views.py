"""The build chat's pages: drafts, a conversation per draft, and approving its proposal.

The client's message is stored before the agent is asked, so a model error or a timeout
loses nothing. The proposal the agent returns is kept on the draft; the scopes shown with it
are derived here from the catalog, never taken from the agent or the model. Only approval
creates or updates an automation, and it saves exactly the revision the page showed.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from intake.agent_client import ChatProposal
from intake.chat import repository
from intake.chat.forms import ApproveForm, AskAgainForm, MessageForm
from intake.chat.replies import ChatState, ReplyFailed, ask_for_reply, chat_state
from intake.db import get_db
from shared.automations import InvalidAutomation
from shared.catalog import AuthKind, required_providers, required_scopes
from shared.db import tenant_transaction
from shared.db.pool import Connection

logger = logging.getLogger(__name__)

blueprint = Blueprint("chat", __name__)

PROPOSAL_INVALID = ("This proposal no longer fits Hapex's catalog, so nothing was saved. "
                    "Keep chatting to get a new one.")


def _client_id() -> uuid.UUID:
    return g.identity.client_id  # type: ignore[no-any-return]  # flask.g holds Any


def _tenant() -> AbstractContextManager[Connection]:
    return tenant_transaction(get_db(), _client_id())


def _path_if_served(path: str, fallback: str) -> str:
    """The form builder's address if this app serves it, else the automations list."""
    adapter = current_app.url_map.bind("localhost")
    return path if adapter.test(path, method="GET") else fallback


def form_builder_url(automation_id: uuid.UUID | None = None) -> str:
    """Where the form builder opens: the approved automation's edit page, else a new automation."""
    if automation_id is not None:
        return _path_if_served(f"/automations/{automation_id}/edit", f"/automations/{automation_id}")
    return _path_if_served("/automations/new", "/automations")


def consent_for(steps: list[dict[str, Any]], trigger: Any = None) -> list[dict[str, Any]]:
    """Per provider to connect: its name and the scopes consent will ask for, from the catalog."""
    scopes = required_scopes(steps, trigger)
    shown = []
    for key in required_providers(steps, trigger):
        provider = current_app.extensions["hapex_catalog"].provider(key)
        shown.append({
            "key": key,
            "name": provider.name,
            "auth_kind": str(provider.auth_kind),
            "scopes": [provider.scope(name) for name in scopes.get(key, ())],
        })
    return shown


@blueprint.get("/chat")
def drafts() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_drafts(conn, client_id=_client_id())
    return render_template("chat/drafts.html", drafts=rows)


@blueprint.get("/chat/new")
def new_draft() -> ResponseReturnValue:
    return _new_draft_page(MessageForm())


def _new_draft_page(form: MessageForm, status: int = 200) -> ResponseReturnValue:
    return render_template("chat/new.html", form=form, state=chat_state(_client_id()),
                           form_builder_url=form_builder_url()), status


@blueprint.post("/chat/new")
def start_draft() -> ResponseReturnValue:
    form = MessageForm()
    if not form.validate():
        return _new_draft_page(form, 400)
    with _tenant() as conn:
        draft_id = repository.create_draft(conn, client_id=_client_id())
        repository.add_message(conn, client_id=_client_id(), draft_id=draft_id, role="client",
                               content=form.message.data)
    logger.info("chat draft started", extra={"client_id": _client_id(), "draft_id": draft_id})
    return _answer(draft_id)


@blueprint.get("/chat/<uuid:draft_id>")
def draft(draft_id: uuid.UUID) -> ResponseReturnValue:
    return _draft_page(draft_id)


def _draft_page(draft_id: uuid.UUID, *, status: int = 200, error: str | None = None,
                form: MessageForm | None = None, state: ChatState | None = None) -> ResponseReturnValue:
    with _tenant() as conn:
        row = repository.get_draft(conn, client_id=_client_id(), draft_id=draft_id)
        if row is None:
            abort(404)
        messages = repository.list_messages(conn, client_id=_client_id(), draft_id=draft_id)
    proposal = row["proposal"]
    approved_now = proposal is not None and row["automation_name"] is not None and \
        row["approved_revision"] == row["proposal_revision"]
    awaiting = bool(messages) and messages[-1]["role"] == "client"
    approve_form = ApproveForm(revision=str(row["proposal_revision"])) if proposal is not None else None
    return render_template(
        "chat/draft.html",
        draft=row,
        messages=messages,
        proposal=proposal,
        summary_lines=(row["proposal_summary"] or "").splitlines(),
        consent=consent_for(proposal["steps"], proposal.get("trigger")) if proposal is not None else [],
        approved_now=approved_now,
        awaiting=awaiting,
        error=error,
        form=form or MessageForm(formdata=None),
        approve_form=approve_form,
        ask_again_form=AskAgainForm(),
        state=state or chat_state(_client_id()),
        form_builder_url=form_builder_url(),
        edit_url=form_builder_url(row["automation_id"]) if row["automation_name"] is not None else None,
        oauth=AuthKind.OAUTH2.value,
    ), status


@blueprint.post("/chat/<uuid:draft_id>/messages")
def send_message(draft_id: uuid.UUID) -> ResponseReturnValue:
    form = MessageForm()
    if not form.validate():
        return _draft_page(draft_id, status=400, form=form)
    with _tenant() as conn:
        if repository.get_draft(conn, client_id=_client_id(), draft_id=draft_id) is None:
            abort(404)
        repository.add_message(conn, client_id=_client_id(), draft_id=draft_id, role="client",
                               content=form.message.data)
    return _answer(draft_id)


@blueprint.post("/chat/<uuid:draft_id>/ask-again")
def ask_again(draft_id: uuid.UUID) -> ResponseReturnValue:
    """After an error: ask about the stored messages again, without writing the last one twice."""
    if not AskAgainForm().validate():
        abort(400)
    with _tenant() as conn:
        if repository.get_draft(conn, client_id=_client_id(), draft_id=draft_id) is None:
            abort(404)
    return _answer(draft_id)


def _answer(draft_id: uuid.UUID) -> ResponseReturnValue:
    """Ask the agent, store what it answered, then show the conversation (or the error, nothing lost)."""
    try:
        reply = ask_for_reply(_client_id(), draft_id)
    except ReplyFailed as failed:
        if failed.status == 404:
            abort(404)
        logger.info("chat reply failed", extra={"client_id": _client_id(), "draft_id": draft_id,
                                                "error": failed.error})
        return _draft_page(draft_id, status=failed.status, error=failed.message)
    with _tenant() as conn:
        if isinstance(reply, ChatProposal):
            repository.save_proposal(conn, client_id=_client_id(), draft_id=draft_id,
                                     automation=reply.automation, summary=reply.summary,
                                     prompt_version=reply.prompt_version)
            text = reply.message or "Here is an automation that does what you described."
        else:
            text = reply.text
        repository.add_message(conn, client_id=_client_id(), draft_id=draft_id, role="assistant", content=text)
    return redirect(url_for("chat.draft", draft_id=draft_id, _anchor="latest"), 303)


@blueprint.post("/chat/<uuid:draft_id>/approve")
def approve(draft_id: uuid.UUID) -> ResponseReturnValue:
    form = ApproveForm()
    if not form.validate():
        return _draft_page(draft_id, status=400, error="This approval was not understood; nothing was saved.")
    try:
        with _tenant() as conn:
            if repository.get_draft(conn, client_id=_client_id(), draft_id=draft_id) is None:
                abort(404)
            automation_id, created = repository.approve(conn, client_id=_client_id(), draft_id=draft_id,
                                                        revision=int(form.revision.data))
    except (repository.NoProposal, repository.ProposalChanged) as refused:
        return _draft_page(draft_id, status=refused.status, error=refused.message)
    except InvalidAutomation:
        return _draft_page(draft_id, status=409, error=PROPOSAL_INVALID)
    logger.info("chat proposal approved", extra={"client_id": _client_id(), "draft_id": draft_id,
                                                 "automation_id": automation_id})
    flash("Approved: the automation is saved." if created else "Approved: the automation is updated.")
    return redirect(url_for("chat.draft", draft_id=draft_id), 303)
