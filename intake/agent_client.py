"""The intake's one door to the agent service: a method per call, typed answers, one error shape.

Every call goes over HTTPS with our CA passed as `verify` (so REQUESTS_CA_BUNDLE cannot
widen it), ignores proxy settings from the environment, follows no redirect and carries the
bearer token, added in `_call` and nowhere else. An answer is one of three things: the typed
result the call promises; `AgentRefused` when the agent declined in its error shape
(`{"error": name, "message": sentence}`); or `AgentUnavailable` for everything else (no
answer, a 5xx, an unexpected status, a body of the wrong shape). Views handle those two
errors, by name where they show something specific, and never see a status code or a body.
Only the call's method, path, status and error name are logged: never a body, which holds
client content, nor the token.

The service token says "this is the intake", not "for any client": a call for a client also
carries that client's own proof (`ClientProof`, the `Hapex-Client-Proof` header), which `_call`
takes from the request being served, so a new method needs nothing for it. A person's request
proves itself with the session secret its cookie just carried (intake.accounts.sessions puts it
there); a webhook's run is started inside `acting_for(ClientProof.webhook(...))`. A call made
outside any request carries no proof, and the agent refuses it on a client's route. When the
agent refuses the proof, the call raises `ClientProofRefused`, which the app answers with
"sign in again" (docs/client-proof.md).
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import requests
from flask import g, has_app_context

from intake.config import IntakeConfig
from shared.secret import Secret

logger = logging.getLogger(__name__)

TIMEOUT = (3.05, 30)
# The agent bounds one chat reply (repairs included) at 110 s; the intake waits a little longer.
CHAT_REPLY_TIMEOUT = (3.05, 130.0)

# The agent's error names the intake tells apart. They are the agent's words: when the agent
# renames one, this is the only line to change.
NOT_FOUND = "not_found"
CLIENT_NOT_FOUND = "client_not_found"  # the agent has no such client: the two services disagree
PROVIDER_NOT_CONFIGURED = "provider_not_configured"  # the code exchange's 409: not on this deployment
RUN_REFUSED = "run_refused"
RUN_NOT_RETRYABLE = "run_not_retryable"
STEP_TEST_REFUSED = "step_test_refused"
STEP_TEST_FAILED = "step_test_failed"
STEP_TEST_INPUT_INVALID = "step_test_input_invalid"
AUTOMATION_PAUSED = "automation_paused"
BUDGET_EXHAUSTED = "budget_exhausted"
CHAT_UNAVAILABLE = "chat_unavailable"
NOTHING_TO_ANSWER = "nothing_to_answer"
MODEL_ERROR = "model_error"
MODEL_TIMEOUT = "model_timeout"

# Every reason the agent gives for not starting a run (all with status 409).
RUN_REFUSALS = frozenset({RUN_REFUSED, AUTOMATION_PAUSED, BUDGET_EXHAUSTED})
# The chat's reply answers these with a 5xx and a sentence meant for the client.
CHAT_REFUSALS_AT_5XX = frozenset({CHAT_UNAVAILABLE, MODEL_ERROR, MODEL_TIMEOUT})

# The agent refuses a call without the client's own proof, or with a proof that is not that
# client's live one, with these names (agent_service.auth).
CLIENT_PROOF_REFUSALS = frozenset({"client_proof_required", "client_proof_refused"})
PROOF_HEADER = "Hapex-Client-Proof"

# An error name is an identifier and a message one sentence; anything else is not the agent's shape.
_ERROR_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_MESSAGE_LENGTH = 500
# The most of an agent's answer the intake reads; stored step outputs (16 MiB each) come larger.
MAX_BODY_BYTES = 1024 * 1024
MAX_OUTPUTS_BODY_BYTES = 64 * 1024 * 1024
# Statuses that say the intake itself is misconfigured (its token), not that the agent declined.
_TOKEN_REFUSED = frozenset({401, 403})

T = TypeVar("T")


class AgentError(Exception):
    """A call to the agent did not give the answer it promises."""


class AgentUnavailable(AgentError, RuntimeError):
    """The agent service could not be reached or did not answer as its API says."""


class AgentRefused(AgentError):
    """The agent understood the call and declined it; `message` is its sentence, safe to show."""

    def __init__(self, name: str, message: str, status: int) -> None:
        self.name, self.message, self.status = name, message, status
        super().__init__(name)  # the name only: a traceback never carries the agent's text


class ClientProofRefused(Exception):
    """The agent did not accept the client's proof: the session ended (sign in again) or the webhook is gone.

    Not an AgentError: a view that handles the agent being down must not turn this into "try later".
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


@dataclass(frozen=True)
class ClientProof:
    """A secret only the client's live use produces, bound to that client: the agent checks its hash."""

    kind: Literal["session", "webhook"]
    client_id: uuid.UUID
    secret: Secret

    @classmethod
    def session(cls, client_id: uuid.UUID, secret: str) -> ClientProof:
        """The session secret the browser's cookie just carried (the database holds only its hash)."""
        return cls("session", client_id, Secret(secret))

    @classmethod
    def webhook(cls, client_id: uuid.UUID, secret: str) -> ClientProof:
        """The secret of the webhook URL that was just called; it proves that one automation only."""
        return cls("webhook", client_id, Secret(secret))

    def header(self) -> str:
        return f"{self.kind} {self.secret.reveal()}"


def current_proof() -> ClientProof | None:
    """The proof of the request being served, if any (set by the session check or acting_for)."""
    if not has_app_context():
        return None
    proof: ClientProof | None = g.get("client_proof")
    return proof


def use_proof(proof: ClientProof | None) -> None:
    """From now on this request's agent calls carry `proof` (None: no proof)."""
    g.client_proof = proof


@contextmanager
def acting_for(proof: ClientProof) -> Iterator[None]:
    """The agent calls made inside carry `proof` instead of the request's own."""
    before = current_proof()
    use_proof(proof)
    try:
        yield
    finally:
        use_proof(before)


class _Malformed(ValueError):
    """An answer with the right status and the wrong body."""


# --- typed answers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    """The connection the agent stored after exchanging the code, and what the provider left out."""

    connection_id: uuid.UUID
    missing_scopes: tuple[str, ...]


@dataclass(frozen=True)
class StoredKey:
    """The connection holding the client's API key; the hint is its last four characters at most."""

    connection_id: uuid.UUID
    secret_hint: str | None


@dataclass(frozen=True)
class Disconnected:
    """How revocation at the provider went: revoked, already_invalid, retry_later, unsupported, ..."""

    revocation: str


@dataclass(frozen=True)
class ConnectionsRevoked:
    """Everything a client connected, revoked and deleted before its account goes."""

    connections_revoked: int
    credentials_deleted: int


@dataclass(frozen=True)
class StartedRun:
    run_id: uuid.UUID
    status: str
    from_step: int = 0


@dataclass(frozen=True)
class StepOutput:
    """One stored step output as the agent opened it; `output` is None when it no longer decrypts."""

    step_index: int
    output: Any = field(repr=False)  # the client's content: never in a log or a traceback
    unreadable: bool


@dataclass(frozen=True)
class OutputsCursor:
    """Where the next page of a client's stored outputs starts."""

    after_run: uuid.UUID
    after_step: int


@dataclass(frozen=True)
class OutputsPage:
    """A page of the client's stored outputs as the export writes them, and where the next starts."""

    outputs: tuple[dict[str, Any], ...] = field(repr=False)
    next: OutputsCursor | None


@dataclass(frozen=True)
class Readiness:
    """The agent's /readyz: ready, or which of its checks failed (only names this client knows)."""

    ready: bool
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatStatus:
    """Before the client types: whether the chat is configured and this month's budget is left."""

    available: bool
    over_budget: bool


@dataclass(frozen=True)
class ChatQuestion:
    """The chat asks the client something before it can propose."""

    text: str = field(repr=False)
    prompt_version: str


@dataclass(frozen=True)
class ChatProposal:
    """An automation the agent validated against the catalog, with the chat's words about it."""

    automation: dict[str, Any] = field(repr=False)
    message: str = field(repr=False)
    summary: str = field(repr=False)
    prompt_version: str


ChatReply = ChatQuestion | ChatProposal


# --- reading answers ---------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise _Malformed("not an id")
    return uuid.UUID(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed("not an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Malformed("not a string")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return "" if value is None else _str(value)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed("not an object")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Malformed("not a list")
    return value


def _connected(body: dict[str, Any]) -> Connected:
    connection = _object(body["connection"])
    return Connected(connection_id=_uuid(connection["connection_id"]),
                     missing_scopes=tuple(_str(s) for s in _list(body.get("missing_scopes") or [])))


def _stored_key(body: dict[str, Any]) -> StoredKey:
    connection = _object(body["connection"])
    # The agent promises the key's last four characters; no more of its text reaches a page.
    return StoredKey(connection_id=_uuid(connection["connection_id"]),
                     secret_hint=_optional_str(connection, "secret_hint")[-4:] or None)


def _disconnected(body: dict[str, Any]) -> Disconnected:
    # The agent has disconnected by the time it answers; an outcome it does not name is shown
    # as a plain "disconnected" rather than as a failure.
    revocation = body.get("revocation")
    return Disconnected(revocation=revocation if isinstance(revocation, str) else "")


def _connections_revoked(body: dict[str, Any]) -> ConnectionsRevoked:
    return ConnectionsRevoked(connections_revoked=_int(body["connections_revoked"]),
                              credentials_deleted=_int(body["credentials_deleted"]))


def _started_run(body: dict[str, Any]) -> StartedRun:
    return StartedRun(run_id=_uuid(body["run_id"]), status=_str(body["status"]))


def _tested_output(body: dict[str, Any]) -> dict[str, Any]:
    return _object(body["output"])


def _retried_run(body: dict[str, Any]) -> StartedRun:
    return StartedRun(run_id=_uuid(body["run_id"]), status=_str(body["status"]), from_step=_int(body["from_step"]))


def _step_outputs(body: dict[str, Any]) -> tuple[StepOutput, ...]:
    outputs = []
    for item in _list(body["outputs"]):
        item = _object(item)
        output = item.get("output")
        outputs.append(StepOutput(step_index=_int(item["step_index"]), output=output,
                                  unreadable=item.get("unreadable") is True or output is None))
    return tuple(outputs)


def _outputs_page(body: dict[str, Any]) -> OutputsPage:
    following = body["next"]
    cursor = None
    if following is not None:
        following = _object(following)
        cursor = OutputsCursor(after_run=_uuid(following["after_run"]), after_step=_int(following["after_step"]))
    return OutputsPage(outputs=tuple(_object(item) for item in _list(body["outputs"])), next=cursor)


def _chat_status(body: dict[str, Any]) -> ChatStatus:
    return ChatStatus(available=body.get("available") is True, over_budget=body.get("over_budget") is True)


READINESS_CHECKS = ("database", "credential_keys")


def _readiness(expected_status: str) -> Callable[[dict[str, Any]], Readiness]:
    def parse(body: dict[str, Any]) -> Readiness:
        if body.get("status") != expected_status:
            raise _Malformed("readiness status does not match the answer's")
        return Readiness(ready=expected_status == "ok",
                         failed=tuple(check for check in READINESS_CHECKS if body.get(check, "ok") != "ok"))
    return parse


def _chat_reply(body: dict[str, Any]) -> ChatReply:
    kind = body.get("kind")
    if kind == "question":
        return ChatQuestion(text=_optional_str(body, "text"), prompt_version=_optional_str(body, "prompt_version"))
    if kind == "proposal":
        return ChatProposal(automation=_object(body["automation"]), message=_optional_str(body, "message"),
                            summary=_optional_str(body, "summary_in_plain_words"),
                            prompt_version=_optional_str(body, "prompt_version"))
    raise _Malformed("neither a question nor a proposal")


def _provisioning_uri(body: dict[str, Any]) -> Secret:
    uri = _str(body["provisioning_uri"])
    if not uri.startswith("otpauth://totp/"):
        raise ValueError("not a TOTP provisioning URI")
    return Secret(uri)


@dataclass(frozen=True)
class SignIn:
    """The agent's answer to a password or a code: `signed_in` with the new session's secret,
    `second_factor` with the pending sign-in's ticket, or `refused`."""

    outcome: str
    client_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    session: Secret | None = field(default=None, repr=False)
    ticket: Secret | None = field(default=None, repr=False)


def _sign_in(body: dict[str, Any]) -> SignIn:
    outcome = str(body["outcome"])
    if outcome not in ("signed_in", "second_factor", "refused"):
        raise ValueError(outcome)
    return SignIn(
        outcome,
        client_id=uuid.UUID(body["client_id"]) if body.get("client_id") else None,
        user_id=uuid.UUID(body["user_id"]) if body.get("user_id") else None,
        session=Secret(str(body["session"])) if body.get("session") else None,
        ticket=Secret(str(body["ticket"])) if body.get("ticket") else None,
    )


@dataclass(frozen=True)
class PasswordChange:
    """`changed` with this browser's new session and how many others ended, or `refused`."""

    changed: bool
    session: Secret | None = field(default=None, repr=False)
    sessions_ended: int = 0


def _password_change(body: dict[str, Any]) -> PasswordChange:
    changed = body["outcome"] == "changed"
    return PasswordChange(changed, session=Secret(str(body["session"])) if changed else None,
                          sessions_ended=int(body.get("sessions_ended") or 0))


def _matches(body: dict[str, Any]) -> bool:
    return body.get("matches") is True


def _outcome(body: dict[str, Any]) -> str:
    return str(body["outcome"])


def _accepted(body: dict[str, Any]) -> bool:
    return body.get("accepted") is True


def _nothing(body: dict[str, Any]) -> None:
    return None


def _passkey_options(body: dict[str, Any]) -> dict[str, Any]:
    options = _object(body["options"])
    if not isinstance(options.get("challenge"), str):
        raise ValueError("no challenge")
    return options


def _passkey_id(body: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(_str(body["passkey_id"]))


class _TooLarge(Exception):
    """The agent's answer is longer than the intake reads."""


def _read(response: requests.Response, max_bytes: int) -> bytes:
    """The answer's bytes, read no further than max_bytes whatever Content-Length claims."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge()
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        body = jsonlib.loads(content)
    except (ValueError, RecursionError):  # a deeply nested body is not the agent's shape either
        return None
    return body if isinstance(body, dict) else None


def _refusal(status: int, body: dict[str, Any] | None, refusals_at_5xx: frozenset[str]) -> AgentRefused | None:
    """The agent's error shape on a 4xx (or a named 5xx this call expects), else None."""
    if body is None:
        return None
    name, message = body.get("error"), body.get("message")
    if not isinstance(name, str) or not _ERROR_NAME.fullmatch(name):
        return None
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_LENGTH:
        return None
    if 400 <= status < 500 and status not in _TOKEN_REFUSED:
        return AgentRefused(name, message, status)
    if status >= 500 and name in refusals_at_5xx:
        return AgentRefused(name, message, status)
    return None


def _proof_refusal(status: int, body: dict[str, Any] | None) -> str | None:
    """The agent's name when it refused the client's proof (a 401 or 403 naming it), else None."""
    if status not in _TOKEN_REFUSED or body is None:
        return None
    name = body.get("error")
    return name if isinstance(name, str) and name in CLIENT_PROOF_REFUSALS else None


# --- the client --------------------------------------------------------------------------


class AgentClient:
    """The agent's API as the intake uses it; `session` is public so tests can mount a transport."""

    def __init__(self, config: IntakeConfig) -> None:
        if not config.agent_service_url.startswith("https://"):
            raise ValueError("AGENT_SERVICE_URL must be https")
        self.base_url = config.agent_service_url
        self.verify: str | bool = config.agent_service_ca or True
        self._token = config.agent_service_token
        self.session = requests.Session()
        self.session.trust_env = False

    # connections

    def exchange_code(self, client_id: uuid.UUID, *, provider: str, code: Secret, code_verifier: Secret,
                      redirect_uri: str, requested_scopes: Sequence[str],
                      connection_id: uuid.UUID | None) -> Connected:
        """Hand the authorization code and PKCE verifier to the agent, which exchanges and stores."""
        body: dict[str, Any] = {"provider": provider, "code": code.reveal(), "code_verifier": code_verifier.reveal(),
                                "redirect_uri": redirect_uri, "requested_scopes": list(requested_scopes)}
        if connection_id is not None:
            body["connection_id"] = str(connection_id)
        return self._call("POST", f"/v1/clients/{client_id}/connections/oauth", _connected, expect=201, json=body)

    def store_api_key(self, client_id: uuid.UUID, *, provider: str, api_key: Secret,
                      label: str | None) -> StoredKey:
        """Pass the key through to the agent, which keeps it encrypted; the intake keeps nothing."""
        body: dict[str, Any] = {"provider": provider, "api_key": api_key.reveal()}
        if label:
            body["label"] = label
        return self._call("POST", f"/v1/clients/{client_id}/connections/api-key", _stored_key, expect=201,
                          json=body)

    def disconnect(self, client_id: uuid.UUID, connection_id: uuid.UUID) -> Disconnected:
        return self._call("DELETE", f"/v1/clients/{client_id}/connections/{connection_id}", _disconnected,
                          expect=200)

    def end_grant(self, client_id: uuid.UUID, connection_id: uuid.UUID) -> Disconnected:
        """Ask the agent to end the provider's grant so that a narrower consent replaces it."""
        return self._call("POST", f"/v1/clients/{client_id}/connections/{connection_id}/end-grant", _disconnected,
                          expect=200)

    def revoke_all_connections(self, client_id: uuid.UUID) -> ConnectionsRevoked:
        return self._call("DELETE", f"/v1/clients/{client_id}/connections", _connections_revoked, expect=200)

    # a user's second factor: the agent seals and checks the secret; the intake sees it once, to draw the QR

    def enrol_totp(self, client_id: uuid.UUID, user_id: uuid.UUID, *, account_name: str) -> Secret:
        """A fresh secret's otpauth:// URI (held as a Secret: it is shown once and never kept)."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/totp", _provisioning_uri, expect=201,
                          json={"account_name": account_name})

    def check_totp(self, client_id: uuid.UUID, user_id: uuid.UUID, *, code: str, confirm: bool) -> bool:
        """A signed-in user's code: good and unused (the agent spends it); `confirm` for an enrolment's first."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/totp/check", _accepted, expect=200,
                          json={"code": code, "confirm": confirm})

    # signing in, and the password (checked by the agent alone: docs/client-proof.md)

    def sign_in(self, *, email: str, password: str, session: dict[str, Any]) -> SignIn:
        """The agent checks the password and starts the session (or a pending sign-in for a second factor)."""
        return self._call("POST", "/v1/sign-in", _sign_in, expect=200,
                          json={"email": email, "password": password, **session})

    def finish_sign_in(self, client_id: uuid.UUID, *, ticket: str, code: str, session: dict[str, Any]) -> SignIn:
        """A pending sign-in's ticket and a code (or a recovery code): the session, or refused."""
        return self._call("POST", "/v1/sign-in/second-factor", _sign_in, expect=200,
                          json={"client_id": str(client_id), "ticket": ticket, "code": code, **session})

    def check_password(self, client_id: uuid.UUID, user_id: uuid.UUID, *, password: str) -> bool:
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/password/check", _matches,
                          expect=200, json={"password": password})

    def change_password(self, client_id: uuid.UUID, user_id: uuid.UUID, *, current_password: str,
                        new_password: str, session: dict[str, Any]) -> PasswordChange:
        return self._call("PUT", f"/v1/clients/{client_id}/users/{user_id}/password", _password_change,
                          expect=200, json={"current_password": current_password, "new_password": new_password,
                                            **session})

    def request_email_change(self, client_id: uuid.UUID, user_id: uuid.UUID, *, password: str, new_email: str,
                             link_base: str) -> str:
        """`sent`, `limited` (enough such emails lately) or `refused` (not the password)."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/email", _outcome, expect=200,
                          json={"password": password, "new_email": new_email, "link_base": link_base})

    def remove_totp(self, client_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self._call("DELETE", f"/v1/clients/{client_id}/users/{user_id}/totp", _nothing, expect=200)

    # passkeys: the agent draws every challenge and verifies every answer; the intake renders the pages

    def passkey_registration_options(self, client_id: uuid.UUID, user_id: uuid.UUID, *,
                                     account_name: str) -> dict[str, Any]:
        """Options for navigator.credentials.create() (the agent keeps the challenge's hash)."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/passkeys/registration-options",
                          _passkey_options, expect=200, json={"account_name": account_name})

    def register_passkey(self, client_id: uuid.UUID, user_id: uuid.UUID, *, credential: dict[str, Any],
                         label: str) -> uuid.UUID:
        """The new passkey's id; AgentRefused (passkey_refused, passkey_already_registered) otherwise."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/passkeys", _passkey_id, expect=201,
                          json={"credential": credential, "label": label})

    def remove_passkey(self, client_id: uuid.UUID, user_id: uuid.UUID, passkey_id: uuid.UUID) -> None:
        self._call("DELETE", f"/v1/clients/{client_id}/users/{user_id}/passkeys/{passkey_id}", _nothing,
                   expect=200)

    def passkey_sign_in_options(self, client_id: uuid.UUID | None = None, *,
                                ticket: str | None = None) -> dict[str, Any]:
        """Options for navigator.credentials.get(): the pending sign-in's user's passkeys (its ticket
        given), or (naming no one) any passkey of this site. AgentRefused (no_passkeys) otherwise."""
        pending = {} if client_id is None or ticket is None else {"client_id": str(client_id), "ticket": ticket}
        return self._call("POST", "/v1/passkeys/options", _passkey_options, expect=200, json=pending)

    def passkey_sign_in(self, credential: dict[str, Any], *, session: dict[str, Any],
                        client_id: uuid.UUID | None = None, ticket: str | None = None) -> SignIn:
        """The agent checks the assertion (with the pending sign-in's ticket for the second step) and
        starts the session: `signed_in` with its secret, or `refused`."""
        pending = {} if client_id is None or ticket is None else {"client_id": str(client_id), "ticket": ticket}
        return self._call("POST", "/v1/passkeys/check", _sign_in, expect=200,
                          json={"credential": credential, **pending, **session})

    def passkey_proof_options(self, client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
        """Options for a signed-in user's fresh proof with one of their own passkeys."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/passkeys/proof-options",
                          _passkey_options, expect=200)

    def check_passkey_proof(self, client_id: uuid.UUID, user_id: uuid.UUID, credential: dict[str, Any]) -> bool:
        """Whether a passkey of this signed-in user answered their challenge (spent; no session starts)."""
        return self._call("POST", f"/v1/clients/{client_id}/users/{user_id}/passkeys/proof", _accepted,
                          expect=200, json={"credential": credential})

    # runs and their stored outputs

    def start_run(self, client_id: uuid.UUID, automation_id: uuid.UUID, *, trigger: str) -> StartedRun:
        return self._call("POST", f"/v1/clients/{client_id}/automations/{automation_id}/runs", _started_run,
                          expect=202, json={"trigger": trigger})

    def retry_run(self, client_id: uuid.UUID, run_id: uuid.UUID) -> StartedRun:
        """A new run of a failed one, from its failed step when the outputs before it are stored."""
        return self._call("POST", f"/v1/clients/{client_id}/runs/{run_id}/retry", _retried_run, expect=202,
                          json={})

    def test_step(self, client_id: uuid.UUID, capability: str, given: dict[str, Any]) -> dict[str, Any]:
        """One read-only step run once on the client's real connection; its output (never stored)."""
        return self._call("POST", f"/v1/clients/{client_id}/steps/test", _tested_output, expect=200,
                          json={"capability": capability, "input": given}, max_bytes=MAX_OUTPUTS_BODY_BYTES)

    def run_outputs(self, client_id: uuid.UUID, run_id: uuid.UUID) -> tuple[StepOutput, ...]:
        return self._call("GET", f"/v1/clients/{client_id}/runs/{run_id}/outputs", _step_outputs, expect=200,
                          max_bytes=MAX_OUTPUTS_BODY_BYTES)

    def client_outputs(self, client_id: uuid.UUID, *, after: OutputsCursor | None, limit: int) -> OutputsPage:
        """One page of every stored output of the client, for its data export."""
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params.update(after_run=str(after.after_run), after_step=after.after_step)
        return self._call("GET", f"/v1/clients/{client_id}/outputs", _outputs_page, expect=200, params=params,
                          max_bytes=MAX_OUTPUTS_BODY_BYTES)

    # the build chat

    def chat_status(self, client_id: uuid.UUID) -> ChatStatus:
        return self._call("GET", f"/v1/clients/{client_id}/chat", _chat_status, expect=200)

    def chat_reply(self, client_id: uuid.UUID, draft_id: uuid.UUID) -> ChatReply:
        """The chat's answer to the draft's stored conversation; one reply may take several model calls."""
        return self._call("POST", f"/v1/clients/{client_id}/chat/{draft_id}/replies", _chat_reply, expect=200,
                          json={}, timeout=CHAT_REPLY_TIMEOUT, refusals_at_5xx=CHAT_REFUSALS_AT_5XX)

    # liveness and readiness (open routes: the token is sent all the same)

    def check_alive(self) -> None:
        """The agent answers over verified HTTPS (its /healthz); AgentUnavailable otherwise."""
        self._call("GET", "/healthz", _nothing, expect=200)

    def check_ready(self) -> Readiness:
        """The agent's /readyz (database and key ring), a 503 included; AgentUnavailable for any other answer."""
        return self._call("GET", "/readyz", _readiness("ok"), expect=200,
                          also={503: _readiness("unavailable")})

    # the one place a request is sent

    def _call(self, method: str, path: str, parse: Callable[[dict[str, Any]], T], *, expect: int,
              json: Any = None, params: dict[str, str | int] | None = None,
              timeout: tuple[float, float] = TIMEOUT, refusals_at_5xx: frozenset[str] = frozenset(),
              max_bytes: int = MAX_BODY_BYTES, also: dict[int, Callable[[dict[str, Any]], T]] | None = None) -> T:
        where = {"method": method, "path": path}
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        proof = current_proof()
        if proof is not None:
            headers[PROOF_HEADER] = proof.header()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
                verify=self.verify,
                allow_redirects=False,
                stream=True,
            )
            with response:
                content = _read(response, max_bytes)
        except requests.RequestException as exc:
            logger.warning("agent service unreachable", extra={**where, "error_class": type(exc).__name__})
            raise AgentUnavailable() from None
        except _TooLarge:
            logger.warning("agent answer too large", extra={**where, "status_code": response.status_code})
            raise AgentUnavailable() from None
        status = response.status_code
        body = _json_object(content)
        answers = {**(also or {}), expect: parse}
        if status in answers and body is not None:
            try:
                return answers[status](body)
            except (KeyError, TypeError, ValueError):
                logger.warning("agent answer malformed", extra={**where, "status_code": status})
                raise AgentUnavailable() from None
        refused = _refusal(status, body, refusals_at_5xx)
        proof_refused = _proof_refusal(status, body)
        if proof_refused is not None:
            logger.info("agent refused the client's proof", extra={**where, "status_code": status,
                                                                  "error": proof_refused})
            raise ClientProofRefused(proof_refused)
        if refused is not None and refused.name == CLIENT_NOT_FOUND:
            logger.error("agent has no such client", extra={**where, "status_code": status})
            raise AgentUnavailable()
        if refused is not None:
            logger.info("agent refused", extra={**where, "status_code": status, "error": refused.name})
            raise refused
        if status in _TOKEN_REFUSED:
            logger.error("agent refused the intake's service token", extra={**where, "status_code": status})
        else:
            logger.warning("agent service error", extra={**where, "status_code": status})
        raise AgentUnavailable()
