"""Connections: list and detail, OAuth consent out and back, API keys, disconnecting.

The intake never holds a token. Consent is started here (PKCE S256, single-use state, see
intake.connections.consent); the callback forwards the code and verifier to the agent service,
which exchanges, stores, revokes and deletes. An API key passes through in the same
request and is never stored, logged or shown again; only its last four characters are.
Every id is read through tenant_transaction with the session's client: another client's
connection or automation is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from intake import agent_client
from intake.accounts.email_links import UNVERIFIED_REFUSAL, email_unverified
from intake.agent_client import AgentRefused, AgentUnavailable, Connected
from intake.config import IntakeConfig
from intake.connections import repository
from intake.connections.consent import (
    STATE_LIFETIME_SECONDS,
    ConsentRefused,
    ProviderDeclined,
    accept_callback,
    start_consent,
)
from intake.connections.consent_scopes import (
    AlreadyGranted,
    ConsentRequest,
    NothingToAsk,
    missing_scopes,
    needed_from,
    plan,
    steps_of,
    unused_scopes,
)
from intake.connections.forms import (
    BACK_TO_AUTOMATION,
    MAX_API_KEY_LENGTH,
    MIN_API_KEY_LENGTH,
    ApiKeyForm,
    ConnectForm,
    DisconnectForm,
    ReduceAccessForm,
)
from intake.db import get_agent, get_db
from shared.catalog import CAPABILITIES, AuthKind, Catalog, Provider, poll_trigger_of
from shared.db import tenant_transaction
from shared.db.pool import Connection
from shared.secret import Secret

logger = logging.getLogger(__name__)

blueprint = Blueprint("connections", __name__)

PKCE_KEY_LABEL = b"hapex oauth pkce verifier key"
# Where a connection started from an automation's page brings the client back: {"provider", "automation_id"}.
COME_BACK_TO = "connect_back"

UNAVAILABLE = "{name} is not available on this Hapex deployment, so it cannot be connected."
NOTHING_NEEDS_IT = (
    "None of your automations uses {name} yet, so Hapex has nothing to ask it for. "
    "Connect it from an automation that needs it."
)
AUTOMATION_DOES_NOT_USE_IT = "That automation does not use {name}, so Hapex has nothing to ask it for."
ALREADY_DISCONNECTED = "This connection was disconnected. Connect {name} again instead of reconnecting it."
GRANT_NOT_ENDED = {
    "retry_later": (
        "{name} has not confirmed that it ended Hapex's current access, so nothing was changed and nothing "
        "was asked. Try again later{link}."
    ),
    "unsupported": (
        "{name} offers Hapex no way to end its access itself, so nothing was changed. Remove Hapex at "
        "{manage} and then connect {name} again to grant only what your automations need."
    ),
}
AGENT_UNREACHABLE = "We could not reach the service that holds your connections, so nothing was changed. " \
                    "Please try again in a few minutes."
REVOCATION_MESSAGES = {
    "revoked": "{name} confirmed that Hapex's access is revoked, and the stored credentials were deleted.",
    "already_invalid": "{name} confirmed that it no longer accepts this access; the stored credentials were deleted.",
    "retry_later": (
        "{name} has not confirmed that Hapex's access is revoked: it refused or could not take the request. "
        "Hapex no longer uses this connection and keeps asking {name}; until {name} confirms, its access may "
        "still work."
    ),
    "unsupported": "The stored credentials were deleted. {name} offers Hapex no way to revoke its access itself.",
    "already_disconnected": "This connection was already disconnected.",
}


# --- helpers -----------------------------------------------------------------------------


def _client_id() -> uuid.UUID:
    return g.identity.client_id  # type: ignore[no-any-return]  # flask.g holds Any


def _config() -> IntakeConfig:
    return current_app.config["HAPEX"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def _catalog() -> Catalog:
    return current_app.extensions["hapex_catalog"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def _as_deployed(provider: Provider) -> Provider:
    """The provider with this deployment's endpoint overrides, resolved at start in the config."""
    return _config().providers.providers.get(provider.key, provider)


def _provider(key: str) -> Provider | None:
    """The catalog's provider as this deployment sets it up, or None."""
    try:
        return _as_deployed(_catalog().provider(key))
    except KeyError:
        return None


def _oauth_provider(key: str) -> Provider:
    provider = _provider(key)
    if provider is None or provider.auth_kind is not AuthKind.OAUTH2:
        abort(404)
    return provider


def pkce_key(config: IntakeConfig) -> Secret:
    """The key PKCE verifiers are derived with: from the session secret, not another variable."""
    secret = config.session_secret.reveal()
    raw = secret.encode() if isinstance(secret, str) else secret
    return Secret(hmac.new(raw, PKCE_KEY_LABEL, hashlib.sha256).digest())


def oauth_available(provider: Provider, config: IntakeConfig) -> bool:
    """Consent needs Hapex's client id at the provider and a public URL to come back to."""
    return (provider.auth_kind is AuthKind.OAUTH2 and bool(config.providers.client_id(provider.key))
            and bool(config.public_url))


def redirect_uri(provider: Provider, config: IntakeConfig) -> str:
    """The exact, per-provider redirect URI registered at the provider."""
    assert config.public_url is not None
    return config.public_url.rstrip("/") + url_for("connections.oauth_callback", provider_key=provider.key)


def describe_scopes(provider: Provider | None, names: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """Each scope with whether it reads or writes and what for, as the catalog says."""
    known = {scope.name: scope for scope in provider.scopes} if provider else {}
    described = []
    for name in names:
        scope = known.get(name)
        described.append({
            "name": name,
            "access": scope.access.value if scope else None,
            "purpose": scope.purpose if scope else None,
        })
    return described


def _uses(provider_key: str, automation: Mapping[str, Any]) -> bool:
    poll = poll_trigger_of(automation.get("trigger"))
    return (poll is not None and poll.provider == provider_key) or any(
        CAPABILITIES[s["capability"]].provider == provider_key for s in steps_of(automation))


def _connection_view(row: dict[str, Any], provider: Provider | None,
                     needed_by_all: tuple[str, ...] | None) -> dict[str, Any]:
    """A connection row with what its scopes mean and what the automations still lack."""
    view = dict(row)
    view["provider_name"] = provider.name if provider else row["provider"]
    view["scopes"] = describe_scopes(provider, row["scopes_granted"])
    missing: tuple[str, ...] = ()
    if provider is not None and row["status"] == "active" and needed_by_all:
        missing = missing_scopes(provider, needed_by_all, row["scopes_granted"])
    view["missing"] = describe_scopes(provider, missing)
    unused: tuple[str, ...] = ()
    if provider is not None and row["status"] == "active" and provider.auth_kind is AuthKind.OAUTH2:
        unused = unused_scopes(provider, row["scopes_granted"], needed_by_all)
    view["unused"] = describe_scopes(provider, unused)
    view["needed"] = describe_scopes(provider, needed_by_all or ())
    return view


def _list_page(*, error: str | None = None, api_key_form: ApiKeyForm | None = None,
               status: int = 200) -> ResponseReturnValue:
    client_id = _client_id()
    config = _config()
    with tenant_transaction(get_db(), client_id) as conn:
        rows = repository.list_connections(conn, client_id=client_id)
        automations = repository.list_automation_steps(conn, client_id=client_id)
    providers = []
    for base in _catalog().providers:
        if base.built_in:  # nothing to connect: Hapex does these steps itself
            continue
        provider = _as_deployed(base)
        needed = needed_from(provider, automations) if provider.auth_kind is AuthKind.OAUTH2 else None
        own = [r for r in rows if r["provider"] == provider.key]
        # What a click on Connect would ask for (without an automation named): the same plan.
        asking: tuple[str, ...] | None = None
        if needed is not None:
            active = next((r for r in own if r["status"] == "active"), None)
            try:
                asking = plan(provider, needed=needed, needed_by_all=needed, active=active).scopes
            except AlreadyGranted:
                asking = None
        providers.append({
            "provider": provider,
            "available": provider.auth_kind is not AuthKind.OAUTH2 or oauth_available(provider, config),
            "connections": [_connection_view(r, provider, needed) for r in own],
            "asking": describe_scopes(provider, asking or ()),
            "needed_by": [a["name"] for a in automations if _uses(provider.key, a)],
            "can_connect": asking is not None,
        })
    body = render_template(
        "connections/connections.html",
        providers=providers,
        error=error,
        api_key_form=api_key_form or ApiKeyForm(formdata=None),
        min_key=MIN_API_KEY_LENGTH,
        max_key=MAX_API_KEY_LENGTH,
    )
    return body, status


def _detail_page(row: dict[str, Any], *, disconnect_form: DisconnectForm | None = None,
                 error: str | None = None, status: int = 200) -> ResponseReturnValue:
    client_id = _client_id()
    with tenant_transaction(get_db(), client_id) as conn:
        automations = repository.list_automation_steps(conn, client_id=client_id)
    provider = _provider(row["provider"])
    needed = needed_from(provider, automations) if provider and provider.auth_kind is AuthKind.OAUTH2 else None
    body = render_template(
        "connections/connection.html",
        connection=_connection_view(row, provider, needed),
        provider=provider,
        available=provider is not None and oauth_available(provider, _config()),
        used_by=[a for a in automations if _uses(row["provider"], a)],
        disconnect_form=disconnect_form or DisconnectForm(formdata=None),
        error=error,
    )
    return body, status


def _found_connection(connection_id: uuid.UUID) -> dict[str, Any]:
    client_id = _client_id()
    with tenant_transaction(get_db(), client_id) as conn:
        row = repository.get_connection(conn, client_id=client_id, connection_id=connection_id)
    if row is None:
        abort(404)
    return row


# --- pages -------------------------------------------------------------------------------


@blueprint.get("/connections")
def connections() -> ResponseReturnValue:
    return _list_page()


@blueprint.get("/connections/<uuid:connection_id>")
def connection(connection_id: uuid.UUID) -> ResponseReturnValue:
    return _detail_page(_found_connection(connection_id))


# --- OAuth consent -----------------------------------------------------------------------


class Refused(Exception):
    """A connect request that is understood but cannot be granted; its message is for the client."""

    def __init__(self, message: str, status: int) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


def _consent_request(conn: Connection, provider: Provider, *, client_id: uuid.UUID,
                     automation_id: uuid.UUID | None, connection_id: uuid.UUID | None) -> ConsentRequest:
    """What to ask the provider for, from the client's saved automations and connections."""
    automations = repository.list_automation_steps(conn, client_id=client_id)
    needed_by_all = needed_from(provider, automations)
    needed = needed_by_all
    if automation_id is not None:
        automation = repository.get_automation_steps(conn, client_id=client_id, automation_id=automation_id)
        if automation is None:
            abort(404)
        needed = needed_from(provider, [automation])
    reconnect = None
    if connection_id is not None:
        reconnect = repository.get_connection(conn, client_id=client_id, connection_id=connection_id)
        if reconnect is None or reconnect["provider"] != provider.key:
            abort(404)
        if reconnect["status"] == "revoked":
            raise Refused(ALREADY_DISCONNECTED.format(name=provider.name), 409)
    active = repository.active_connection_for(conn, client_id=client_id, provider=provider.key)
    if reconnect is None and active is None:
        # "Reconnect" from an automation's page names no connection: renew the broken one, as the
        # connection page's button does, rather than adding a second beside it with its old token kept.
        reconnect = repository.broken_connection_for(conn, client_id=client_id, provider=provider.key)
    try:
        return plan(provider, needed=needed, needed_by_all=needed_by_all, active=active, reconnect=reconnect)
    except NothingToAsk:
        message = AUTOMATION_DOES_NOT_USE_IT if automation_id is not None else NOTHING_NEEDS_IT
        raise Refused(message.format(name=provider.name), 400) from None


def _end_grant(provider: Provider, connection_id: uuid.UUID) -> str | None:
    """Have the agent end the provider's grant before a narrower consent; the client's message if it did not."""
    try:
        outcome = get_agent().end_grant(_client_id(), connection_id).revocation
    except AgentUnavailable:
        return AGENT_UNREACHABLE
    except AgentRefused as refused:
        if refused.name == agent_client.NOT_FOUND:
            abort(404)
        return AGENT_UNREACHABLE
    if outcome in ("revoked", "already_invalid"):
        return None
    manage = provider.manage_access_url or ""
    template = GRANT_NOT_ENDED.get(outcome, GRANT_NOT_ENDED["retry_later"])
    return template.format(name=provider.name, manage=manage,
                           link=f", or remove Hapex at {manage} and connect it again" if manage else "")


def _continue_to_consent(provider: Provider, wanted: ConsentRequest, *, ended: tuple[str, ...] = ()
                         ) -> ResponseReturnValue:
    """Record the consent request and send the browser on to the provider."""
    config = _config()
    client_id = _client_id()
    with tenant_transaction(get_db(), client_id) as conn:
        started = start_consent(
            conn,
            client_id=client_id,
            session_hash=g.identity.session_hash,
            provider=replace(provider, authorization_params={**provider.authorization_params,
                                                             **wanted.authorization_params}),
            client_id_at_provider=config.providers.client_id(provider.key) or "",
            redirect_uri=redirect_uri(provider, config),
            scopes=wanted.scopes,
            pkce_key=pkce_key(config),
            connection_id=wanted.connection_id,
        )
    logger.info("consent started", extra={"client_id": client_id, "provider": provider.key,
                                          "connection_id": wanted.connection_id, "count": len(wanted.scopes)})
    # A page that moves on by itself rather than a 303: the CSP's form-action 'self' rightly
    # stops browsers from following a form submission's redirect to another origin.
    return render_template(
        "connections/continue.html",
        provider=provider,
        authorization_url=started.authorization_url,
        scopes=describe_scopes(provider, wanted.scopes),
        ended=describe_scopes(provider, ended),
        lifetime_minutes=STATE_LIFETIME_SECONDS // 60,
    )


@blueprint.post("/connections/<provider_key>/connect")
def connect(provider_key: str) -> ResponseReturnValue:
    """Ask the provider for what the automations need and is not yet granted, nothing else."""
    provider = _oauth_provider(provider_key)
    config = _config()
    form = ConnectForm()
    if not form.validate():
        return _list_page(error="That request was not understood, so nothing was asked.", status=400)
    if email_unverified():
        return _list_page(error=UNVERIFIED_REFUSAL, status=403)
    if not oauth_available(provider, config):
        return _list_page(error=UNAVAILABLE.format(name=provider.name), status=409)
    client_id = _client_id()
    automation_id = uuid.UUID(form.automation_id.data) if form.automation_id.data else None
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            wanted = _consent_request(
                conn, provider, client_id=client_id, automation_id=automation_id,
                connection_id=uuid.UUID(form.connection_id.data) if form.connection_id.data else None,
            )
    except Refused as refused:
        return _list_page(error=refused.message, status=refused.status)
    except AlreadyGranted as granted:
        flash(f"{provider.name} already grants everything your automations need; nothing was asked.")
        if automation_id is not None and form.back.data == BACK_TO_AUTOMATION:
            return _back_to_automation(provider, automation_id)
        return redirect(url_for("connections.connection", connection_id=granted.connection_id), 303)
    session.pop(COME_BACK_TO, None)
    if automation_id is not None and form.back.data == BACK_TO_AUTOMATION:
        session[COME_BACK_TO] = {"provider": provider.key, "automation_id": str(automation_id)}
    if wanted.end_grant_first and wanted.connection_id is not None:
        problem = _end_grant(provider, wanted.connection_id)
        if problem is not None:
            return _list_page(error=problem, status=409)
    return _continue_to_consent(provider, wanted, ended=wanted.end_grant_first)


@blueprint.post("/connections/<uuid:connection_id>/reduce-access")
def reduce_access(connection_id: uuid.UUID) -> ResponseReturnValue:
    """End the grant (revoke at the provider) and ask again for only what the saved automations use."""
    row = _found_connection(connection_id)
    provider = _oauth_provider(row["provider"])
    form = ReduceAccessForm()
    if not form.validate() or row["status"] != "active":
        return _detail_page(row, error="That request was not understood, so nothing was changed.", status=400)
    if not oauth_available(provider, _config()):
        return _detail_page(row, error=UNAVAILABLE.format(name=provider.name), status=409)
    client_id = _client_id()
    with tenant_transaction(get_db(), client_id) as conn:
        needed = needed_from(provider, repository.list_automation_steps(conn, client_id=client_id))
    unused = unused_scopes(provider, row["scopes_granted"], needed)
    if not unused or not needed:
        return _detail_page(row, error="Every scope granted is used, so nothing was changed.", status=409)
    problem = _end_grant(provider, connection_id)
    if problem is not None:
        return _detail_page(row, error=problem, status=409)
    logger.info("access reduced", extra={"client_id": client_id, "provider": provider.key,
                                         "connection_id": connection_id, "count": len(unused)})
    return _continue_to_consent(provider, ConsentRequest(needed, connection_id, {}), ended=unused)


def _consent_outcome(provider: Provider, title: str, message: str, status: int) -> ResponseReturnValue:
    return render_template("connections/outcome.html", provider=provider, title=title, message=message), status


@blueprint.get("/connections/oauth/<provider_key>/callback")
def oauth_callback(provider_key: str) -> ResponseReturnValue:
    """Check the provider's answer, then hand the code to the agent; never show or log it."""
    provider = _oauth_provider(provider_key)
    config = _config()
    client_id = _client_id()
    try:
        accepted = accept_callback(
            get_db(), client_id=client_id, provider=provider, session_hash=g.identity.session_hash,
            params=request.args.to_dict(flat=True), pkce_key=pkce_key(config),
        )
        if any(len(values) > 1 for values in request.args.listvalues()):
            # RFC 6749 3.1: no parameter twice. The state is consumed all the same.
            raise ConsentRefused("repeated_parameter")
    except ProviderDeclined:
        logger.info("consent declined", extra={"client_id": client_id, "provider": provider.key})
        return _consent_outcome(provider, "Nothing was connected",
                                f"{provider.name} reported that access was not granted, so nothing was "
                                "connected. You can start again from your connections.", 400)
    except ConsentRefused as refused:
        logger.info("consent refused", extra={"client_id": client_id, "provider": provider.key,
                                              "error": refused.reason})
        return _consent_outcome(provider, "Nothing was connected",
                                f"This answer from {provider.name} could not be accepted: it did not match a "
                                "connection you started in this session, or it came too late. Nothing was "
                                "connected; start again from your connections.", 400)
    try:
        connected = get_agent().exchange_code(
            client_id, provider=provider.key, code=accepted.code, code_verifier=accepted.code_verifier,
            redirect_uri=accepted.redirect_uri, requested_scopes=accepted.requested_scopes,
            connection_id=accepted.connection_id,
        )
    except AgentUnavailable:
        return _consent_outcome(provider, "Nothing was connected",
                                f"We could not finish connecting {provider.name}, so nothing was stored. "
                                "Please start again in a few minutes.", 503)
    except AgentRefused as refused:
        return _exchange_refused(provider, refused)
    return _exchange_outcome(provider, connected, accepted.requested_scopes)


def _exchange_outcome(provider: Provider, connected: Connected,
                      requested_scopes: Sequence[str]) -> ResponseReturnValue:
    # Only scopes the intake asked for are named back to the client: the agent's text is not shown.
    missing = [scope for scope in connected.missing_scopes if scope in requested_scopes]
    logger.info("connection authorised", extra={"client_id": _client_id(), "provider": provider.key,
                                                "connection_id": connected.connection_id, "count": len(missing)})
    if missing:
        flash(f"{provider.name} is connected, but it did not grant everything Hapex asked for. "
              f"Not granted: {', '.join(missing)}.")
    else:
        flash(f"{provider.name} is connected.")
    back = session.pop(COME_BACK_TO, None)
    if isinstance(back, dict) and back.get("provider") == provider.key:
        return _back_to_automation(provider, uuid.UUID(str(back["automation_id"])))
    return redirect(url_for("connections.connection", connection_id=connected.connection_id), 303)


def _back_to_automation(provider: Provider, automation_id: uuid.UUID) -> ResponseReturnValue:
    """The automation's page, at what it needs from this provider (its page 404s for anyone else's id)."""
    return redirect(url_for("automations.automation", automation_id=automation_id,
                            _anchor=f"need-{provider.key}"), 303)


def _exchange_refused(provider: Provider, refused: AgentRefused) -> ResponseReturnValue:
    logger.info("connection refused by the agent", extra={"client_id": _client_id(), "provider": provider.key,
                                                          "error": refused.name})
    if refused.name == agent_client.NOT_FOUND:
        return _consent_outcome(provider, "Nothing was connected",
                                "The connection you were renewing no longer exists, so nothing was stored.", 404)
    if refused.name == agent_client.PROVIDER_NOT_CONFIGURED:
        return _consent_outcome(provider, "Nothing was connected", UNAVAILABLE.format(name=provider.name), 409)
    return _consent_outcome(provider, "Nothing was connected",
                            f"{provider.name} did not accept the authorization, so nothing was stored. "
                            "Start again from your connections.", 400)


# --- API keys ----------------------------------------------------------------------------


@blueprint.post("/connections/api-key")
def connect_api_key() -> ResponseReturnValue:
    """Forward the key to the agent in this same request; it is never kept or shown here."""
    if email_unverified():
        return _list_page(error=UNVERIFIED_REFUSAL, status=403)
    form = ApiKeyForm()
    if not form.validate():
        return _list_page(api_key_form=form, status=400)
    provider = _provider(form.provider.data)
    if provider is None or provider.auth_kind is not AuthKind.API_KEY:
        abort(404)
    client_id = _client_id()
    try:
        stored = get_agent().store_api_key(client_id, provider=provider.key, api_key=Secret(form.api_key.data),
                                           label=form.label.data or None)
    except AgentUnavailable:
        return _list_page(error=AGENT_UNREACHABLE, api_key_form=form, status=503)
    except AgentRefused as refused:
        logger.info("api key refused by the agent", extra={"client_id": client_id, "provider": provider.key,
                                                          "error": refused.name})
        return _list_page(error="That key could not be stored; nothing was saved. Check it and try again.",
                          api_key_form=form, status=400)
    logger.info("api key connected", extra={"client_id": client_id, "provider": provider.key,
                                            "connection_id": stored.connection_id})
    hint = stored.secret_hint
    flash(f"{provider.name} is connected. The key is stored encrypted"
          + (f"; Hapex shows only its last four characters, …{hint}." if hint else "."))
    return redirect(url_for("connections.connection", connection_id=stored.connection_id), 303)


# --- disconnecting -----------------------------------------------------------------------


@blueprint.post("/connections/<uuid:connection_id>/disconnect")
def disconnect(connection_id: uuid.UUID) -> ResponseReturnValue:
    """Revoke at the provider and delete the credentials (the agent does both), then say what paused."""
    row = _found_connection(connection_id)
    form = DisconnectForm()
    if not form.validate():
        return _detail_page(row, disconnect_form=form, status=400)
    provider = _provider(row["provider"])
    name = provider.name if provider else row["provider"]
    client_id = _client_id()
    with tenant_transaction(get_db(), client_id) as conn:
        automations = repository.list_automation_steps(conn, client_id=client_id)
    dependents = [a["automation_id"] for a in automations if a["status"] == "enabled" and _uses(row["provider"], a)]
    try:
        outcome = get_agent().disconnect(client_id, connection_id).revocation
    except AgentUnavailable:
        return _detail_page(row, error=AGENT_UNREACHABLE, status=503)
    except AgentRefused as refused:
        if refused.name == agent_client.NOT_FOUND:
            abort(404)
        return _detail_page(row, error=AGENT_UNREACHABLE, status=502)
    logger.info("connection disconnected", extra={"client_id": client_id, "connection_id": connection_id,
                                                 "provider": row["provider"], "status": outcome})
    message = REVOCATION_MESSAGES.get(outcome, "The connection was disconnected.")
    if row["auth_kind"] == AuthKind.API_KEY.value and outcome == "unsupported":
        message = "The stored key was deleted. Change or remove it where it is used, too."
    elif outcome in ("unsupported", "retry_later") and provider is not None and provider.manage_access_url:
        message += f" To end it now, remove Hapex at {provider.manage_access_url}."
    flash(message.format(name=name))
    with tenant_transaction(get_db(), client_id) as conn:
        now = repository.automation_statuses(conn, client_id=client_id, automation_ids=dependents)
    paused = [a["name"] for a in now if a["status"] == "paused"]
    if paused:
        # Reconnecting does not resume them by itself: each is enabled again from its page.
        flash(f"Paused because they used {name}: {', '.join(paused)}. "
              f"Connect {name} again, then enable each one again to resume it.")
    return redirect(url_for("connections.connection", connection_id=connection_id), 303)
