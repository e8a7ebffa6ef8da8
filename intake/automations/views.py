"""The client's automations (list, build, edit, enable, run now), their runs and what they cost.

Every page reads and writes through tenant_transaction with the session's client; an id
that is not one of that client's rows is a 404, whether it exists for someone else or not
at all. Definitions are saved only through shared.automations.repository, which validates
them against the catalog: an invalid one is shown again with its messages and a 400, and
nothing is written.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from intake import agent_client
from intake.accounts.email_links import UNVERIFIED_REFUSAL, email_unverified
from intake.agent_client import AgentRefused, AgentUnavailable, StepOutput
from intake.automations import access, costs, forms, hooks, repository, run_fixes, starters, step_tests
from intake.db import get_agent, get_db
from shared.automations import InvalidAutomation, load_automation, next_fire_time
from shared.automations import repository as definitions
from shared.catalog import CAPABILITIES, poll_trigger_of
from shared.db import tenant_transaction
from shared.db.pool import Connection

logger = logging.getLogger(__name__)

blueprint = Blueprint("automations", __name__)

NOT_SAVED = "The automation was not saved. Correct the fields marked below."
RUN_REFUSED = {
    agent_client.AUTOMATION_PAUSED: "This automation is paused, so it did not run.",
    agent_client.BUDGET_EXHAUSTED: "This month's budget is used up, so the run was not started.",
}
RUN_NOT_STARTED = "This automation cannot run right now."
NOT_ENABLED = "Not enabled yet: it needs these connections first. Connect each one below, then enable it again."
AGENT_UNREACHABLE = "The service that runs automations could not be reached. Nothing was started; try again shortly."


def _client_id() -> uuid.UUID:
    return g.identity.client_id  # type: ignore[no-any-return]  # flask.g holds Any


def _tenant() -> AbstractContextManager[Connection]:
    return tenant_transaction(get_db(), _client_id())


def _found(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        abort(404)
    return row


def _automation(conn: Connection, automation_id: uuid.UUID) -> dict[str, Any]:
    return _found(repository.get_automation(conn, client_id=_client_id(), automation_id=automation_id))


@blueprint.get("/automations")
def automations() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_automations(conn, client_id=_client_id())
    return render_template("automations/automations.html", automations=rows)


def _automation_page(automation_id: uuid.UUID, *, status: int = 200, error: str | None = None,
                     webhook_secret: str | None = None,
                     blockers: list[access.ProviderNeed] | None = None) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _automation(conn, automation_id)
        runs = repository.list_runs(conn, client_id=_client_id(), automation_id=automation_id, limit=20)
        connections = repository.provider_connections(conn, client_id=_client_id())
        waiting = (repository.poll_waiting(conn, client_id=_client_id(), automation_id=automation_id)
                   if (row["trigger"] or {}).get("kind") == "poll" else 0)
    trigger = row["trigger"] or {}
    if row["status"] == "enabled" and trigger.get("kind") == "schedule" and row["next_run_at"] is None:
        # Just enabled or changed: the scheduler plans the slot on its next tick; show that slot, not a dash.
        row = {**row, "next_run_at": next_fire_time(trigger, datetime.now(UTC))}
    webhook_url = None
    if webhook_secret is not None:
        webhook_url = _public_url(url_for("hooks.trigger", secret=webhook_secret))
    return render_template(
        "automations/automation.html",
        automation=row,
        poll_source=poll_trigger_of(trigger),
        poll_waiting=waiting,
        draft=forms.draft_from_definition(row),
        needs=access.provider_needs(row["steps"] or [], connections, current_app.extensions["hapex_catalog"],
                                    trigger=row["trigger"]),
        runs=runs,
        error=error,
        blockers=blockers or [],
        webhook_url=webhook_url,
        input_fields=forms.input_fields,
        reference_options=forms.reference_options,
    ), status


def _public_url(path: str) -> str:
    """On INTAKE_PUBLIC_URL when it is set, as the OAuth redirect URIs are; else as this request came in."""
    public = current_app.config["HAPEX"].public_url
    if public:
        return str(public).rstrip("/") + path
    return request.host_url.rstrip("/").replace("http://", "https://", 1) + path


# The session key under which a new webhook address's pad waits for the one page that shows it.
REVEAL = "webhook_reveal"
REVEAL_TTL = timedelta(minutes=10)


def _reveal_webhook(automation_id: uuid.UUID, secret: str) -> ResponseReturnValue:
    """Post, redirect, get, with the new address split in two halves worthless alone: a one-time
    pad in the session cookie (signed, not encrypted: whoever holds the cookie may read it) and the
    secret XOR the pad in a row that the page the redirect reaches deletes as it reads it. So the
    page shows it once, a reload neither saves twice nor shows it again, and neither the cookie
    nor the database (nor a log) ever holds the address."""
    plain = secret.encode("ascii")
    pad = secrets.token_bytes(len(plain))
    with _tenant() as conn:
        reveal_id = repository.insert_webhook_reveal(conn, client_id=_client_id(), automation_id=automation_id,
                                                     masked=bytes(a ^ b for a, b in zip(plain, pad, strict=True)),
                                                     ttl=REVEAL_TTL)
    session[REVEAL] = {"automation_id": str(automation_id), "reveal_id": str(reveal_id), "pad": pad.hex()}
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


def _revealed_secret(automation_id: uuid.UUID) -> str | None:
    """The new address's secret, joined from the cookie's pad and its row (deleted as it is read), once."""
    reveal = session.pop(REVEAL, None)
    if not isinstance(reveal, dict) or reveal.get("automation_id") != str(automation_id):
        return None
    try:
        reveal_id, pad = uuid.UUID(str(reveal.get("reveal_id"))), bytes.fromhex(str(reveal.get("pad")))
    except ValueError:
        return None
    with _tenant() as conn:
        masked = repository.take_webhook_reveal(conn, client_id=_client_id(), reveal_id=reveal_id,
                                                automation_id=automation_id, ttl=REVEAL_TTL)
    if masked is None or len(masked) != len(pad):
        return None
    return bytes(a ^ b for a, b in zip(masked, pad, strict=True)).decode("ascii", "replace")


@blueprint.get("/automations/<uuid:automation_id>")
def automation(automation_id: uuid.UUID) -> ResponseReturnValue:
    secret = _revealed_secret(automation_id)
    if secret is None:
        return _automation_page(automation_id)
    response = make_response(_automation_page(automation_id, webhook_secret=secret))
    response.headers["Cache-Control"] = "no-store"
    return response


def _builder(draft: forms.AutomationDraft, *, automation: dict[str, Any] | None,
             errors: dict[str, list[str]] | None = None, notice: str | None = None,
             status: int = 200, tested: step_tests.StepTestResult | None = None,
             notice_is_error: bool = True) -> ResponseReturnValue:
    errors = errors or {}
    placed = forms.placed_keys(draft)
    claude_missing = _claude_missing(draft)
    return render_template(
        "automations/builder.html",
        draft=draft,
        automation=automation,
        errors=errors,
        unplaced=[(key, text) for key, texts in errors.items() if key not in placed for text in texts],
        notice=notice,
        notice_is_error=notice_is_error,
        input_fields=forms.input_fields,
        reference_options=forms.reference_options,
        available_fields=forms.available_fields,
        text_kinds=forms.TEXT_KINDS,
        choice_label=forms.choice_label,
        tested=tested,
        claude_missing=claude_missing,
        claude_missing_text=CLAUDE_MISSING,
        sample_fields=lambda index: step_tests.sample_fields(draft, index, request.form),
        test_label=step_tests.button_label,
        capability_choices=forms.capability_choices(),
        timezones=forms.timezones(),
        poll_choices=forms.poll_choices(),
    ), status


CLAUDE_MISSING = ("This Hapex installation has no Claude model set up, so this step would fail when it runs. "
                  "Ask whoever runs Hapex for you to add it, or use another step.")


def _claude_missing(draft: forms.AutomationDraft) -> bool:
    """Whether a Claude step is in the draft on a deployment without the model (asked of the agent,
    which holds its configuration); unknown when the agent cannot be reached, and then not said."""
    if not any(step.known is not None and step.known.billable_llm for step in draft.steps):
        return False
    try:
        return not get_agent().chat_status(_client_id()).available
    except (AgentUnavailable, AgentRefused):
        return False


def _build(automation: dict[str, Any] | None) -> ResponseReturnValue:
    """One press of a builder button: add or remove a step and show the form again, or save."""
    draft = forms.draft_from_form(request.form)
    action = forms.parse_action(request.form)
    if action.kind == "test" and action.index is not None and action.index < len(draft.steps):
        tested = step_tests.test_step(get_agent(), _client_id(), draft, action.index, request.form)
        response = make_response(_builder(draft, automation=automation, tested=tested))
        response.headers["Cache-Control"] = "no-store"  # it may show the client's content
        return response
    if action.kind != "save":
        problem = forms.apply_action(draft, action, request.form.get("new_capability", ""),
                                     request.form.get("new_position", ""))
        if problem:
            key = "new_capability"
            if action.kind == "insert":
                key = f"steps.{action.index}.input.{action.input_name}"
            return _builder(draft, automation=automation, errors={key: [problem]}, status=400)
        return _builder(draft, automation=automation)
    definition, unreadable = forms.definition_from_draft(draft)
    try:
        if unreadable:
            load_automation(definition)  # for the other fields' messages; nothing is written
            raise InvalidAutomation({})
        with _tenant() as conn:
            if automation is None:
                automation_id = definitions.create_automation(conn, client_id=_client_id(), definition=definition)
            else:
                automation_id = automation["automation_id"]
                definitions.update_automation(conn, client_id=_client_id(), automation_id=automation_id,
                                              definition=definition)
            secret = _keep_webhook_in_step(conn, automation_id, definition["trigger"]["kind"], automation)
    except InvalidAutomation as invalid:
        errors = forms.form_errors(invalid.messages, draft)
        for key, texts in unreadable.items():
            errors[key] = texts
        if not draft.steps:
            errors["steps"] = ["Add at least one step."]
        return _builder(draft, automation=automation, errors=errors, notice=NOT_SAVED, status=400)
    logger.info("automation saved", extra={"client_id": _client_id(), "automation_id": automation_id})
    flash("The automation was saved." if automation is None else "Your changes were saved as a new version.")
    if secret is not None:
        return _reveal_webhook(automation_id, secret)
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


def _keep_webhook_in_step(conn: Connection, automation_id: uuid.UUID, kind: str,
                          before: dict[str, Any] | None) -> str | None:
    """A new webhook trigger gets its secret now; a trigger that is no longer one forgets it."""
    if kind != "webhook":
        if before is not None and before["has_webhook_url"]:
            hooks.forget_secret(conn, client_id=_client_id(), automation_id=automation_id)
        return None
    if before is not None and before["has_webhook_url"]:
        return None
    return hooks.issue_secret(conn, client_id=_client_id(), automation_id=automation_id)


@blueprint.route("/automations/new", methods=["GET", "POST"])
def new_automation() -> ResponseReturnValue:
    if request.method == "GET":
        starter = starters.BY_KEY.get(request.args.get("starter", ""))
        if starter is not None:
            return _builder(forms.draft_from_definition(starter.definition), automation=None,
                            notice=f"Starting from “{starter.title}”: check each step, fill in what is empty, "
                                   "then save.", notice_is_error=False)
        return _builder(forms.AutomationDraft(), automation=None)
    return _build(None)


@blueprint.get("/automations/gallery")
def gallery() -> ResponseReturnValue:
    return render_template("automations/gallery.html", starters=starters.STARTERS)


@blueprint.route("/automations/<uuid:automation_id>/edit", methods=["GET", "POST"])
def edit_automation(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _automation(conn, automation_id)
    if request.method == "GET":
        return _builder(forms.draft_from_definition(row), automation=row)
    return _build(row)


@blueprint.post("/automations/<uuid:automation_id>/enable")
def enable(automation_id: uuid.UUID) -> ResponseReturnValue:
    if email_unverified():
        return _automation_page(automation_id, status=403, error=UNVERIFIED_REFUSAL)
    secret = None
    with _tenant() as conn:
        row = _automation(conn, automation_id)
        needs = access.provider_needs(row["steps"] or [], repository.provider_connections(conn, client_id=_client_id()),
                                      trigger=row["trigger"])
        blockers = [need for need in needs if not need.ready]
        if not blockers:
            definitions.set_status(conn, automation_id=automation_id, status="enabled")
        if not blockers and row["trigger"].get("kind") == "webhook" and not row["has_webhook_url"]:
            secret = hooks.issue_secret(conn, client_id=_client_id(), automation_id=automation_id)
    if blockers:
        return _automation_page(automation_id, status=409, error=NOT_ENABLED, blockers=blockers)
    logger.info("automation enabled", extra={"client_id": _client_id(), "automation_id": automation_id})
    flash("The automation is enabled.")
    if secret is not None:
        return _reveal_webhook(automation_id, secret)
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


@blueprint.post("/automations/<uuid:automation_id>/duplicate")
def duplicate(automation_id: uuid.UUID) -> ResponseReturnValue:
    """A copy as a new draft (no webhook address until it is enabled, no runs)."""
    with _tenant() as conn:
        row = _automation(conn, automation_id)
        definition = {"name": ("Copy of " + row["name"])[:200], "trigger": row["trigger"], "steps": row["steps"],
                      "store_outputs": bool(row["store_outputs"])}
        try:
            copy_id = definitions.create_automation(conn, client_id=_client_id(), definition=definition)
        except InvalidAutomation:
            # Saved before a rule it now breaks: the copy opens in the builder to be corrected.
            return _builder(forms.draft_from_definition(definition), automation=None,
                            notice="This copy needs a correction before it can be saved.", status=400)
    flash(f"This is a copy of {row['name']}, as a draft. Rename it or change it as you like.")
    return redirect(url_for("automations.automation", automation_id=copy_id), 303)


@blueprint.post("/automations/<uuid:automation_id>/archive")
def archive(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        _automation(conn, automation_id)
        definitions.set_status(conn, automation_id=automation_id, status="archived")
    flash("The automation is archived: it does not run, and it is listed last. Restore it to use it again.")
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


@blueprint.post("/automations/<uuid:automation_id>/restore")
def restore(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        _automation(conn, automation_id)
        definitions.set_status(conn, automation_id=automation_id, status="disabled")
    flash("The automation is restored, disabled: enable it when it should run again.")
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


@blueprint.post("/automations/<uuid:automation_id>/delete")
def delete(automation_id: uuid.UUID) -> ResponseReturnValue:
    """Delete, keeping its run records until the retention period ends or deleting them now; what
    the runs cost stays on the costs page either way."""
    choice = request.form.get("records", "")
    with _tenant() as conn:
        row = _automation(conn, automation_id)
        if choice not in ("keep", "delete"):
            return _automation_page(automation_id, status=400,
                                    error="Choose whether to keep or delete its run records, then press Delete.")
        if choice == "keep":
            definitions.set_status(conn, automation_id=automation_id, status="deleted")
            hooks.forget_secret(conn, client_id=_client_id(), automation_id=automation_id)
        else:
            repository.delete_automation(conn, client_id=_client_id(), automation_id=automation_id)
    logger.info("automation deleted", extra={"client_id": _client_id(), "automation_id": automation_id})
    flash(f"{row['name']} is deleted" + (
        "; its run records stay under Runs until the retention period ends." if choice == "keep" else
        ", with its run records and stored outputs."))
    return redirect(url_for("automations.automations"), 303)


@blueprint.post("/automations/<uuid:automation_id>/disable")
def disable(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        _automation(conn, automation_id)
        definitions.set_status(conn, automation_id=automation_id, status="disabled")
    logger.info("automation disabled", extra={"client_id": _client_id(), "automation_id": automation_id})
    flash("The automation is disabled: it will not run until you enable it again.")
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


@blueprint.post("/automations/<uuid:automation_id>/webhook")
def new_webhook_url(automation_id: uuid.UUID) -> ResponseReturnValue:
    """Replace the webhook URL (the old one stops working); the new one is shown once."""
    with _tenant() as conn:
        row = _automation(conn, automation_id)
        if row["trigger"].get("kind") != "webhook":
            abort(404)
        secret = hooks.issue_secret(conn, client_id=_client_id(), automation_id=automation_id)
    return _reveal_webhook(automation_id, secret)


@blueprint.post("/automations/<uuid:automation_id>/run")
def run_now(automation_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        _automation(conn, automation_id)
    try:
        get_agent().start_run(_client_id(), automation_id, trigger="manual")
    except AgentUnavailable:
        return _automation_page(automation_id, status=503, error=AGENT_UNREACHABLE)
    except AgentRefused as refused:
        if refused.name == agent_client.NOT_FOUND:
            abort(404)
        if refused.name in agent_client.RUN_REFUSALS:
            return _automation_page(automation_id, status=409, error=RUN_REFUSED.get(refused.name, RUN_NOT_STARTED))
        logger.warning("run not started", extra={"error": refused.name})
        return _automation_page(automation_id, status=503, error=AGENT_UNREACHABLE)
    flash("The run is queued. It appears below and under Runs.")
    return redirect(url_for("automations.automation", automation_id=automation_id), 303)


@blueprint.get("/runs")
def runs() -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.list_runs(conn, client_id=_client_id())
    return render_template("automations/runs.html", runs=rows)


@dataclass(frozen=True)
class StoredOutput:
    """One step's stored output as the run page shows it: pretty-printed JSON, or None when unreadable."""

    text: str | None

    @classmethod
    def from_step(cls, step: StepOutput) -> StoredOutput:
        if step.unreadable:
            return cls(None)
        return cls(json.dumps(step.output, indent=2, ensure_ascii=False))

    def __repr__(self) -> str:  # never the output itself, should one ever reach a log or a traceback
        return f"StoredOutput(<{'unreadable' if self.text is None else f'{len(self.text)} characters'}>)"


@blueprint.post("/runs/<uuid:run_id>/retry")
def retry_run(run_id: uuid.UUID) -> ResponseReturnValue:
    with _tenant() as conn:
        _found(repository.get_run(conn, client_id=_client_id(), run_id=run_id))
    try:
        started = get_agent().retry_run(_client_id(), run_id)
    except AgentUnavailable:
        return _run_page(run_id, status=503, error=AGENT_UNREACHABLE)
    except AgentRefused as refused:
        if refused.name == agent_client.NOT_FOUND:
            abort(404)
        message = RUN_REFUSED.get(refused.name) or (
            "Only a failed run can be retried." if refused.name == agent_client.RUN_NOT_RETRYABLE else
            RUN_NOT_STARTED if refused.name == agent_client.RUN_REFUSED else None)
        if message is None:
            logger.warning("run not retried", extra={"error": refused.name})
            return _run_page(run_id, status=503, error=AGENT_UNREACHABLE)
        return _run_page(run_id, status=409, error=message)
    flash(f"Retrying from step {started.from_step + 1}, reusing the outputs of the steps before it."
          if started.from_step else "Retrying from the first step.")
    return redirect(url_for("automations.run", run_id=started.run_id), 303)


@blueprint.get("/runs/<uuid:run_id>")
def run(run_id: uuid.UUID) -> ResponseReturnValue:
    return _run_page(run_id)


def _run_page(run_id: uuid.UUID, *, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    with _tenant() as conn:
        row = _found(repository.get_run(conn, client_id=_client_id(), run_id=run_id))
        steps = repository.list_run_steps(conn, client_id=_client_id(), run_id=run_id)
        spent = repository.run_costs(conn, client_id=_client_id(), run_id=run_id)
    stores_outputs = bool(row["store_outputs"])
    outputs = _stored_outputs(run_id) if stores_outputs else None
    response = make_response(render_template(
        "automations/run.html", run=row, steps=steps, costs=spent, source_labels=costs.SOURCE_LABELS,
        titles={key: c.title for key, c in CAPABILITIES.items()}, fix=run_fixes.fix_for,
        stores_outputs=stores_outputs, outputs=outputs, step_providers=_step_providers(), error=error,
    ), status)
    if stores_outputs:
        response.headers["Cache-Control"] = "no-store"
    return response


def _step_providers() -> dict[str, str]:
    """Each capability's provider as this deployment names it (a sandboxed one says so)."""
    catalog = current_app.extensions["hapex_catalog"]
    names = {p.key: p.name for p in catalog.providers}
    return {c.key: names.get(c.provider, c.provider) for c in catalog.capabilities}


def _stored_outputs(run_id: uuid.UUID) -> dict[int, StoredOutput] | None:
    """The run's stored outputs by step index, from the agent, the only service that can decrypt them."""
    try:
        stored = get_agent().run_outputs(_client_id(), run_id)
    except (AgentUnavailable, AgentRefused):
        # The client logs the call's status; an output is the client's content and is never logged.
        logger.warning("stored outputs not loaded", extra={"run_id": run_id})
        return None
    return {step.step_index: StoredOutput.from_step(step) for step in stored}


@blueprint.post("/costs/budget")
def set_budget() -> ResponseReturnValue:
    """Set, change or remove the monthly budget; the 80% notice and the refusal at 100% follow it."""
    from intake.accounts.members import require_owner

    require_owner()  # the budget is the business owners' decision (members get 403)
    budget: int | None = None
    if request.form.get("budget_action") != "remove":
        try:
            budget = costs.parse_budget(request.form.get("budget", ""))
        except ValueError as exc:
            return costs_page(error=str(exc), status=400)
    with _tenant() as conn:
        repository.set_monthly_budget(conn, client_id=_client_id(), budget=budget)
    logger.info("monthly budget changed", extra={"client_id": _client_id()})
    flash("The monthly budget is removed: runs are never stopped for cost." if budget is None
          else "The monthly budget is saved.")
    return redirect(url_for("automations.costs") + "#budget", 303)


@blueprint.get("/costs", endpoint="costs")
def costs_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    with _tenant() as conn:
        rows = repository.costs_by_month(conn, client_id=_client_id(), since=costs.first_month_shown())
        lines = repository.costs_this_month(conn, client_id=_client_id())
        budget = repository.monthly_budget(conn, client_id=_client_id())
    shown = costs.months(rows)
    return render_template(
        "automations/costs.html",
        months=shown,
        chart=costs.chart(shown),
        sources=costs.source_totals(rows),
        source_labels=costs.SOURCE_LABELS,
        provider_names={p.key: p.name for p in current_app.extensions["hapex_catalog"].providers},
        lines=lines,
        this_month=shown[-1],
        budget=budget,
        budget_error=error,
        budget_text=request.form.get("budget", "") if error else
        ("" if budget is None else f"{budget / 1_000_000:.2f}"),
    ), status
