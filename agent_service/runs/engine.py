"""Executing a run in a worker: each step in order, recorded as metadata only.

Step outputs pass from step to step in memory and are never logged. They are stored only
when the client turned store_outputs on for the automation, sealed by the vault in the same
commit as the step's record. A run that a dead worker left half done is not guessed at: it
resumes only when every finished step's output is stored and the interrupted step (if any)
had no side effect; otherwise no step is run again and the run fails with a clear reason.

Each execution of a run takes the next execution number and writes the run's records only
while that number is still the run's (RunExecution.transaction), so a worker wrongly judged
dead stops at its next write once another has taken the run over: never two carry it on.

A step's attempts are one StepAttempt: its first is marked in the same transaction as its
connection check and its credential's access record (the run's opening transaction, for the
first step to run, and the previous step's success, for each later one), and the credential is
used only once that has committed, so the access is on record before the call, a one-step run
commits twice (when it opens and when its step's outcome is recorded) and each further step once.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError

from agent_service.capabilities import (
    LLMUsage,
    ProviderHTTP,
    ProviderRateLimited,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
    StepFailed,
    StepResult,
)
from agent_service.capabilities.registry import run_capability
from agent_service.connections import repository as connections
from agent_service.connections.lifecycle import pause_dependents
from agent_service.connections.tokens import ReconnectNeeded, ensure_access_token
from agent_service.polls.sources import SOURCES
from agent_service.runs import repository as runs
from agent_service.runs.prices import PRICE_VERSION, llm_cost_microusd
from agent_service.runtime import AgentRuntime
from agent_service.vault import (
    Accessor,
    CredentialKeyMissing,
    CredentialNotFound,
    CredentialUnreadable,
    Purpose,
    StepSecret,
)
from shared.automations import resolve_step_input
from shared.catalog import CAPABILITIES, CONDITION, AuthKind, Capability, PollTrigger, Provider, poll_trigger_of
from shared.db import DatabaseUnavailable, tenant_transaction
from shared.db.pool import Connection

logger = logging.getLogger(__name__)
FINAL = ("succeeded", "failed", "cancelled", "stopped")
# A run whose "continue only if" did not hold: stopped there, which is neither a failure nor a success.
STOPPED_BY_CONDITION = "by_condition"
# A run queued before its automation was archived or deleted: ended when a worker picks it up, unrun.
PUT_AWAY = ("archived", "deleted")
AUTOMATION_PUT_AWAY = "automation_archived"
PUT_AWAY_MESSAGE = "The automation was archived or deleted before this run started, so it did not run."
# Runs execute in worker processes: the credential access audit names them so.
WORKER = "worker"


class StepError(Exception):
    """A step failed; error_class and safe_message are what the client sees."""

    def __init__(self, error_class: str, safe_message: str) -> None:
        self.error_class = error_class
        self.safe_message = safe_message
        super().__init__(safe_message)


@dataclass
class Clock:
    """Time and sleep, replaceable in tests."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class Superseded(Exception):
    """Another execution of this run took over (its worker judged this one dead): stop here."""


@dataclass(frozen=True)
class RunExecution:
    """One execution of one run: the number it took when it started, and what its steps share."""

    rt: AgentRuntime
    client_id: uuid.UUID
    run_id: uuid.UUID
    execution: int
    clock: Clock
    # The trigger's fields, for text with fields (trigger.started_at, ...): data, never re-parsed.
    trigger: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A tenant transaction that writes this run's records only while the run is still this
        execution's. The run row stays locked until commit, so a worker taking the run over
        (which locks it for update) waits for this commit and then sees what it wrote."""
        with tenant_transaction(self.rt.db, self.client_id) as conn:
            if runs.run_execution(conn, run_id=self.run_id) != self.execution:
                raise Superseded()
            yield conn

    @contextmanager
    def transaction_fenced_by(self, statement: Callable[[Connection], int | None]) -> Iterator[Connection]:
        """As transaction(), the fence being the transaction's first statement: one that locks the run as
        fence_run does, writes nothing unless the run is still this execution's, and returns the execution
        it found (None if the run is gone). A round trip fewer; anything else follows in the same commit."""
        with tenant_transaction(self.rt.db, self.client_id) as conn:
            if statement(conn) != self.execution:
                raise Superseded()  # rolls back whatever the statement may have written
            yield conn

    def elapsed_ms(self, started: float) -> int:
        return int((self.clock.monotonic() - started) * 1000)


def execute_run(rt: AgentRuntime, *, client_id: uuid.UUID, run_id: uuid.UUID, clock: Clock | None = None) -> str:
    """Run every step of a queued run; return the run's final status ("superseded" if another
    execution took it over meanwhile)."""
    clock = clock or Clock()
    first_attempt: StepAttempt | None = None
    poll: PollTrigger | None = None
    log: dict[str, Any] = {"client_id": client_id, "run_id": run_id}
    try:
        with tenant_transaction(rt.db, client_id) as conn:
            row = runs.lock_run(conn, run_id=run_id)
            if row is None:
                return "missing"
            if row["status"] in FINAL:
                return str(row["status"])
            # The definition, the steps' records and the next execution number, in one statement.
            definition = runs.claim_run(conn, run_id=run_id, automation_id=row["automation_id"],
                                        version=row["automation_version"], put_away=PUT_AWAY)
            recorded: list[dict[str, Any]] = definition.pop("recorded")
            execution: int | None = definition.pop("execution")
            if execution is None:  # queued, and its automation put away: not started
                # Checked under the run's lock, in the transaction that would claim it: the run ends
                # cancelled (not failed: nothing went wrong) and no step, credential or provider is touched.
                runs.finish_run(conn, run_id=run_id, status="cancelled", error_class=AUTOMATION_PUT_AWAY,
                                error_message=PUT_AWAY_MESSAGE)
                logger.info("run not started: its automation was put away",
                            extra={**log, "automation_id": row["automation_id"]})
                return "cancelled"
            interrupted = any(step["status"] != "pending" for step in recorded)
            resumed = _resumable_outputs(rt, conn, client_id, run_id, definition, recorded) if interrupted else []
            run = RunExecution(rt, client_id, run_id, execution, clock, trigger_fields(row, definition))
            poll = poll_trigger_of(definition["trigger"]) if row.get("trigger_item") else None
            # The first step to run begins here too, under the run's lock: one commit fewer (a poll's run
            # reads its item first, which its first step's input may use).
            if poll is None:
                first_attempt = StepAttempt.begin_first(conn, run, definition["steps"], resumed)
        log["automation_id"] = row["automation_id"]
        if poll is not None and resumed is not None:
            try:
                item = _trigger_item_fields(run, poll, definition["trigger"], str(row["trigger_item"]))
            except StepError as failure:
                _finish(run, "failed", failure.error_class, f"The new item could not be read: {failure.safe_message}")
                logger.info("run failed reading its item", extra={**log, "error_class": failure.error_class})
                return "failed"
            run = replace(run, trigger={**run.trigger, **item})
        return _execute(run, definition, recorded, resumed, interrupted, log, first_attempt)
    except Superseded:
        logger.warning("run taken over by another execution; this one stopped", extra=log)
        return "superseded"
    finally:
        if first_attempt is not None:
            first_attempt.discard()


def trigger_fields(row: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any]:
    """The trigger's fields of a run, from its own record (the same on every execution of it); a
    retry's are those of the run it retries."""
    trigger = definition.get("trigger") or {}
    try:
        zone = ZoneInfo(trigger.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    values: dict[str, Any] = {"started_at": row["trigger_at"].astimezone(zone).isoformat(timespec="seconds")}
    if row.get("trigger_scheduled_for") is not None:
        values["scheduled_for"] = row["trigger_scheduled_for"].astimezone(zone).isoformat(timespec="seconds")
    return values


def _trigger_item_fields(run: RunExecution, poll: PollTrigger, trigger: Mapping[str, Any],
                         item_key: str) -> dict[str, Any]:
    """The fields of the new item a poll started this run for, read from the provider now: the run's
    record holds only the item's id. The credential is opened as a step's is, audited as trigger_item."""
    rt = run.rt
    provider = rt.provider(poll.provider)
    with tenant_transaction(rt.db, run.client_id) as conn:
        connection = connections.connection_for_step(conn, provider=provider.key)
    if connection is None:
        raise StepError("not_connected", f"{provider.name} is not connected.")
    if connection["status"] != "active":
        raise StepError("needs_reauth", f"{provider.name} needs to be reconnected.")
    if set(poll.scopes) - provider.granted_closure(connection["scopes_granted"]):
        raise StepError("missing_scope", f"{provider.name} has not granted what this trigger needs; connect it "
                                         "again to add the missing access.")
    http = ProviderHTTP(provider, verify=rt.verify, session=rt.http_session(provider.key))
    ctx = StepContext(client_id=run.client_id, run_id=run.run_id, step_index=0, http=http, llm=rt.llm,
                      idempotency_key=f"{run.run_id}:trigger")
    connection_id = connection["connection_id"]
    try:
        ensure_access_token(rt, client_id=run.client_id, connection_id=connection_id, provider=provider,
                            accessor=Accessor(WORKER, run.run_id, reason="token_refresh"))
        with rt.vault.open_for_step(client_id=run.client_id, connection_id=connection_id,
                                    purpose=Purpose.ACCESS_TOKEN,
                                    accessor=Accessor(WORKER, run.run_id, reason="trigger_item")) as token:
            return SOURCES[poll.key].item(ctx, token, trigger.get("options") or {}, item_key)
    except StepFailed as exc:
        raise StepError(exc.error_class, exc.safe_message) from None
    except ReconnectNeeded:
        _pause_for(rt, run.client_id, provider)
        raise StepError("needs_reauth", f"{provider.name} no longer accepts Hapex's access; reconnect it to "
                                        "resume.") from None
    except (CredentialUnreadable, CredentialNotFound):
        _pause_for(rt, run.client_id, provider)
        raise StepError("needs_reauth", f"{provider.name} needs to be reconnected.") from None
    except CredentialKeyMissing:
        raise StepError("credential_key_missing",
                        "This connection cannot be used right now; Hapex has been alerted.") from None


def _execute(run: RunExecution, definition: dict[str, Any], recorded: list[dict[str, Any]],
             resumed: list[dict[str, Any]] | None, interrupted: bool, log: dict[str, Any],
             first_attempt: StepAttempt | None) -> str:
    if resumed is None:
        return _fail_interrupted(run, recorded, log)
    outputs = resumed
    if interrupted:
        logger.info("run resumed after a worker interruption", extra={**log, "count": len(outputs)})

    deadline = run.clock.monotonic() + run.rt.limits.run_seconds
    steps = definition["steps"]
    store = bool(definition["store_outputs"])
    first = len(outputs)  # steps done before an interruption: their stored outputs stand in
    attempt = first_attempt  # a step's first attempt, when it began in the previous step's transaction
    try:
        for index, step in enumerate(steps[first:], start=first):
            begin_next = None
            if index + 1 < len(steps):
                begin_next = functools.partial(StepAttempt.begin_at, run=run, steps=steps, index=index + 1,
                                               earlier=list(outputs))
            try:
                output, attempt = _run_step(run, index, step, outputs, recorded[index]["idempotency_key"], deadline,
                                            last=index == len(steps) - 1, store_output=store, attempt=attempt,
                                            begin_next=begin_next)
                outputs.append(output)
                if _stops_here(step, outputs[-1]):
                    logger.info("run stopped by condition", extra={**log, "step_index": index})
                    return "stopped"
            except StepError as failure:
                _finish(run, "failed", failure.error_class,
                        f"Step {index + 1} ({_title(step)}): {failure.safe_message}")
                logger.info("run failed", extra={**log, "step_index": index, "error_class": failure.error_class})
                return "failed"
            except (Superseded, DatabaseUnavailable):
                raise  # a database outage interrupts the run (retried); it is no outcome of the step
            except Exception:
                # A defect of ours: the run must not stay 'running' for ever, nor say more than this.
                logger.exception("run failed on an internal error", extra={**log, "step_index": index})
                _finish(run, "failed", "internal_error",
                        f"Step {index + 1} ({_title(step)}): Hapex hit an internal error; we have been alerted.")
                return "failed"
        if first == len(steps):  # nothing left to run (the last step finishes the run otherwise)
            _finish(run, "succeeded", None, None)
        logger.info("run succeeded", extra={**log, "count": len(outputs)})
        return "succeeded"
    finally:
        if attempt is not None:  # begun, and not used: an error came first
            attempt.discard()


def _title(step: Mapping[str, Any]) -> str:
    """The step as the builder names it (Post to Slack), as the run page does."""
    capability = CAPABILITIES.get(step["capability"])
    return capability.title if capability else str(step["capability"])


def _stops_here(step: Mapping[str, Any], output: Mapping[str, Any]) -> bool:
    return step["capability"] == CONDITION and output.get("passed") is False


def stopped_message(index: int, counts: Mapping[str, int]) -> str:
    """What the run record says when a condition stops it: the step, and never the values compared."""
    reason = " (a value was not of the type compared)" if counts.get("unreadable") else ""
    return f"Step {index + 1} (Continue only if): the condition was not met{reason}, so the run stopped there."


def _resumable_outputs(rt: AgentRuntime, conn: Connection, client_id: uuid.UUID, run_id: uuid.UUID,
                       definition: dict[str, Any], recorded: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The outputs to resume from, or None when resuming could repeat an effect or lacks an output.

    Resumable: finished steps, each with its output stored and readable, then at most one step
    that was running and may safely run again (it has no side effect), then steps never begun.
    A worker judged dead may in fact still be running: the execution fence stops it before it
    writes again or starts another step, so what it is in the middle of is all it can still do.
    """
    statuses = [step["status"] for step in recorded]
    done = 0
    while done < len(statuses) and statuses[done] == "succeeded":
        done += 1
    rest = statuses[done:]
    if rest and rest[0] == "running":
        if CAPABILITIES[definition["steps"][done]["capability"]].side_effect:
            return None
        rest = rest[1:]
    if any(status != "pending" for status in rest):
        return None
    if done == 0:
        return []
    if not definition["store_outputs"]:
        return None
    stored = {item.step_index: item.output for item in rt.vault.open_step_outputs(conn, client_id=client_id,
                                                                                 run_id=run_id)}
    outputs = [stored.get(index) for index in range(done)]
    if any(output is None for output in outputs):
        return None
    return outputs  # type: ignore[return-value]  # no output is None: checked above


def _fail_interrupted(run: RunExecution, recorded: list[dict[str, Any]], log: dict[str, Any]) -> str:
    """A worker died during this run: never repeat a step that may have had its effect."""
    with run.transaction() as conn:
        for step in recorded:
            if step["status"] == "running":
                runs.finish_step(conn, run_id=run.run_id, step_index=step["step_index"], status="failed",
                                 duration_ms=None, error_class="outcome_unknown",
                                 safe_message="Outcome unknown: the worker stopped during this step before its "
                                              "result was recorded. It was not retried, so that it cannot "
                                              "happen twice.", counts={})
        runs.skip_remaining_steps(conn, run_id=run.run_id)
        runs.finish_run(conn, run_id=run.run_id, status="failed", error_class="worker_interrupted",
                        error_message="The worker running this automation stopped midway; steps already done were "
                                      "not repeated. Run it again when ready.")
    logger.warning("run failed after a worker interruption", extra=log)
    return "failed"


def _finish(run: RunExecution, status: str, error_class: str | None, message: str | None) -> None:
    with run.transaction() as conn:
        if status != "succeeded":
            runs.settle_running_steps(conn, run_id=run.run_id)
            runs.skip_remaining_steps(conn, run_id=run.run_id)
        runs.finish_run(conn, run_id=run.run_id, status=status, error_class=error_class, error_message=message)


def connection_problem(capability: Capability, provider: Provider,
                        connection: dict[str, Any] | None) -> StepError | None:
    if provider.auth_kind is AuthKind.HAPEX_KEY:
        return None
    if connection is None:
        return StepError("not_connected", f"{provider.name} is not connected.")
    if connection["status"] != "active":
        return StepError("needs_reauth", f"{provider.name} needs to be reconnected.")
    missing = set(capability.scopes) - provider.granted_closure(connection["scopes_granted"])
    if missing:
        return StepError("missing_scope", f"{provider.name} has not granted what this step needs; "
                                          "connect it again to add the missing access.")
    return None


@dataclass
class StepAttempt:
    """A step's attempts. The first is marked together with its connection check, in one
    transaction: the input, the usable connection (or the problem found instead) and, when no
    refresh can come first, its credential opened in that same transaction (usable once it has
    committed). The run's first step to execute begins in the run's opening transaction."""

    run: RunExecution
    index: int
    provider: Provider
    data: dict[str, Any] = field(repr=False)  # the step's input: it may hold the client's content
    connection: dict[str, Any] | None = field(default=None, repr=False)
    problem: StepError | None = None
    secret: StepSecret | None = None
    failure: Exception | None = None

    @classmethod
    def begin_first(cls, conn: Connection, run: RunExecution, steps: list[dict[str, Any]],
                    resumed: list[dict[str, Any]] | None) -> StepAttempt | None:
        """The first attempt of the run's next step, begun under the run's lock: one commit fewer."""
        if resumed is None or len(resumed) >= len(steps):
            return None
        return cls.begin_at(conn, run=run, steps=steps, index=len(resumed), earlier=resumed)

    @classmethod
    def begin_at(cls, conn: Connection, *, run: RunExecution, steps: list[dict[str, Any]], index: int,
                 earlier: list[dict[str, Any]], output: dict[str, Any] | None = None) -> StepAttempt | None:
        """The first attempt of step `index`, from the outputs before it (`earlier`, then `output`, the
        previous step's, when it begins in that step's success transaction); None if its input does not
        resolve (the step then records that failure itself)."""
        try:
            data = resolve_step_input(steps[index], earlier if output is None else [*earlier, output], run.trigger)
        except ValidationError:
            return None
        capability = CAPABILITIES[steps[index]["capability"]]
        return cls.begin(conn, run, index, capability, run.rt.provider(capability.provider), data)

    @classmethod
    def begin(cls, conn: Connection, run: RunExecution, index: int, capability: Capability, provider: Provider,
              data: dict[str, Any]) -> StepAttempt:
        """Check the connection and, if usable, mark the first attempt (and open its credential)."""
        connection, sealed = None, None
        purpose = Purpose.ACCESS_TOKEN if provider.auth_kind is AuthKind.OAUTH2 else Purpose.API_KEY
        if provider.auth_kind is not AuthKind.HAPEX_KEY:  # the connection and its sealed credential: one read
            connection, sealed = connections.connection_and_credential_for_step(conn, provider=provider.key,
                                                                                purpose=purpose)
        problem = connection_problem(capability, provider, connection)
        attempt = cls(run, index, provider, data, connection, problem)
        if problem is not None:
            return attempt
        runs.start_step(conn, run_id=run.run_id, step_index=index)
        if connection is None or _refresh_may_come_first(run.rt, provider, connection):
            return attempt
        try:
            attempt.secret = run.rt.vault.unseal_row_in_transaction(
                conn, client_id=run.client_id, connection_id=connection["connection_id"], purpose=purpose,
                row=sealed, accessor=Accessor(WORKER, run.run_id, index))
            if attempt.secret is None:
                attempt.failure = CredentialUnreadable()
        except (CredentialNotFound, CredentialKeyMissing) as exc:
            attempt.failure = exc  # raised where the call would have opened it, as before
        return attempt

    @classmethod
    def begin_alone(cls, run: RunExecution, index: int, capability: Capability, provider: Provider,
                    data: dict[str, Any]) -> StepAttempt:
        """The first attempt begun in a transaction of its own (the run's opening one did not)."""
        with run.transaction() as conn:
            return cls.begin(conn, run, index, capability, provider, data)

    def raise_problem(self) -> None:
        """A connection problem is the step's failure; one needing reconnection pauses what depends on it."""
        if self.problem is None:
            return
        if self.problem.error_class == "needs_reauth":
            _pause_for(self.run.rt, self.run.client_id, self.provider)
        raise self.problem

    def retry(self) -> None:
        """Mark the next attempt (the first was marked with the connection check)."""
        with self.run.transaction() as conn:
            runs.start_step(conn, run_id=self.run.run_id, step_index=self.index)

    @contextmanager
    def use_credential(self) -> Iterator[StepSecret]:
        """The credential for the first call; it expires when the call ends."""
        if self.failure is not None:
            raise self.failure
        if self.secret is None:
            raise CredentialUnreadable()
        try:
            yield self.secret
        finally:
            self.discard()

    @property
    def prepared(self) -> bool:
        return self.secret is not None or self.failure is not None

    def discard(self) -> None:
        if self.secret is not None:
            self.secret.expire()


def _refresh_may_come_first(rt: AgentRuntime, provider: Provider, connection: dict[str, Any]) -> bool:
    """An OAuth token that ensure_access_token would refresh before the call."""
    if provider.auth_kind is not AuthKind.OAUTH2:
        return False
    expires_at = connection["access_token_expires_at"]
    return expires_at is not None and expires_at <= datetime.now(UTC) + timedelta(
        seconds=rt.limits.refresh_margin_seconds)


def _pause_for(rt: AgentRuntime, client_id: uuid.UUID, provider: Provider) -> None:
    with tenant_transaction(rt.db, client_id) as conn:
        pause_dependents(conn, provider)


def _backoff(rt: AgentRuntime, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    base = rt.limits.backoff_base_seconds * (2.0 ** (attempt - 1))
    return min(rt.limits.backoff_cap_seconds, base) * (0.5 + random.random() / 2)  # noqa: S311 - jitter only


# The next step's first attempt, begun in the transaction that records this step's success (given its output).
BeginNext = Callable[..., "StepAttempt | None"]


def _run_step(run: RunExecution, index: int, step: dict[str, Any], outputs: list[dict[str, Any]],
              idempotency_key: str, deadline: float, *, last: bool, store_output: bool,
              attempt: StepAttempt | None, begin_next: BeginNext | None = None,
              ) -> tuple[dict[str, Any], StepAttempt | None]:
    """The step's output, and the next step's first attempt when it began with this step's success."""
    rt, clock = run.rt, run.clock
    capability = CAPABILITIES[step["capability"]]
    provider = rt.provider(capability.provider)
    started = clock.monotonic()
    attempts = 0
    http = ProviderHTTP(provider, verify=rt.verify, session=rt.http_session(provider.key))
    if attempt is None:
        try:
            data = resolve_step_input(step, outputs, run.trigger)
        except ValidationError:
            _fail(run, index, "input_invalid", "An earlier step's output did not fit this step's input.", started, 1)
    else:
        data = attempt.data
    try:
        if attempt is None:
            attempt = StepAttempt.begin_alone(run, index, capability, provider, data)
        attempt.raise_problem()
    except StepError as failure:
        _fail(run, index, failure.error_class, failure.safe_message, started, 1)
    connection = attempt.connection
    ctx = StepContext(client_id=run.client_id, run_id=run.run_id, step_index=index, http=http, llm=rt.llm,
                      idempotency_key=idempotency_key, allow_loopback_webhooks=rt.allow_loopback_webhooks)
    refreshed_after_401 = False
    while True:
        attempts += 1
        if attempts > 1:  # the first was marked with the connection check
            attempt.retry()
        try:
            result = _call(rt, ctx, capability, provider, connection, data,
                           attempt if attempts == 1 and attempt.prepared else None)
        except ProviderUnauthorized as exc:
            if connection is None or provider.auth_kind is not AuthKind.OAUTH2 or refreshed_after_401:
                _fail(run, index, exc.error_class, exc.safe_message, started, attempts)
            refreshed_after_401 = True
            try:
                ensure_access_token(rt, client_id=run.client_id, connection_id=connection["connection_id"],
                                    provider=provider, force=True,
                                    seen_expiry=connection["access_token_expires_at"],
                                    accessor=Accessor(WORKER, run.run_id, index, reason="token_refresh"))
            except ReconnectNeeded:
                _reconnect_needed(run, index, provider, started, attempts)
            continue
        except ProviderTransient as exc:
            may_retry = isinstance(exc, ProviderRateLimited) or not capability.side_effect
            delay = _backoff(rt, attempts, exc.retry_after)
            out_of_time = clock.monotonic() + delay > deadline
            if (not may_retry or attempts >= rt.limits.step_attempts or out_of_time
                    or delay > rt.limits.max_retry_after_seconds):
                message = exc.safe_message
                if capability.side_effect and not may_retry:
                    message += " Not retried, so that it cannot happen twice."
                _fail(run, index, exc.error_class, message, started, attempts)
            logger.info("step retrying", extra={"client_id": run.client_id, "run_id": run.run_id,
                                                "step_index": index, "attempt": attempts,
                                                "error_class": exc.error_class})
            clock.sleep(delay)
            continue
        except StepFailed as exc:
            if exc.llm_usage:
                with run.transaction() as conn:
                    _record_costs(conn, run, index, provider, exc.llm_usage, 0)
            _fail(run, index, exc.error_class, exc.safe_message, started, attempts)
        except ReconnectNeeded:
            _reconnect_needed(run, index, provider, started, attempts)
        except (CredentialUnreadable, CredentialNotFound):
            _pause_for(rt, run.client_id, provider)
            _fail(run, index, "needs_reauth", f"{provider.name} needs to be reconnected.", started, attempts)
        except CredentialKeyMissing:
            _fail(run, index, "credential_key_missing",
                  "This connection cannot be used right now; Hapex has been alerted.", started, attempts)
        stop = _stops_here(step, result.output)
        following = _record_success(run, index, provider, connection, result, http.calls, started,
                                    finish_run=last or stop, store_output=store_output, stopped=stop,
                                    begin_next=None if last or stop else begin_next)
        return result.output, following


def _call(rt: AgentRuntime, ctx: StepContext, capability: Capability, provider: Provider,
          connection: dict[str, Any] | None, data: dict[str, Any], attempt: StepAttempt | None) -> StepResult:
    if connection is None:
        return run_capability(capability.key, ctx, None, data)
    if attempt is not None:  # opened when the attempt was marked, and no refresh was due then
        with attempt.use_credential() as token:
            return run_capability(capability.key, ctx, token, data)
    connection_id = connection["connection_id"]
    accessor = Accessor(WORKER, ctx.run_id, ctx.step_index)
    if provider.auth_kind is AuthKind.OAUTH2:
        if ensure_access_token(rt, client_id=ctx.client_id, connection_id=connection_id, provider=provider,
                               accessor=Accessor(WORKER, ctx.run_id, ctx.step_index, reason="token_refresh")):
            connection["access_token_expires_at"] = _current_expiry(rt, ctx.client_id, connection_id)
        purpose = Purpose.ACCESS_TOKEN
    else:
        purpose = Purpose.API_KEY
    with rt.vault.open_for_step(client_id=ctx.client_id, connection_id=connection_id, purpose=purpose,
                                accessor=accessor) as token:
        return run_capability(capability.key, ctx, token, data)


def _current_expiry(rt: AgentRuntime, client_id: uuid.UUID, connection_id: uuid.UUID) -> datetime | None:
    with tenant_transaction(rt.db, client_id) as conn:
        return connections.access_token_expiry(conn, connection_id=connection_id)


def _fail(run: RunExecution, index: int, error_class: str, message: str, started: float, attempts: int) -> NoReturn:
    """Record the step as failed and end it: StepError carries the reason to the run."""
    with run.transaction() as conn:
        runs.finish_step(conn, run_id=run.run_id, step_index=index, status="failed",
                         duration_ms=run.elapsed_ms(started), error_class=error_class, safe_message=message,
                         counts={"attempts": attempts})
    raise StepError(error_class, message)


# A run the sweep finds not final although its job no longer queues or runs it.
LOST_RUN_MESSAGE = ("Hapex lost track of this run (its worker or the database stopped) before it finished; "
                    "steps already done were not repeated. Run it again when ready.")


def settle_lost_run(rt: AgentRuntime, *, client_id: uuid.UUID, run_id: uuid.UUID) -> bool:
    """Fail a run whose job is gone: the step in flight is 'outcome unknown', the rest skipped.

    Under the run's lock, and with the execution number moved on, so an execution that is somehow
    still going stops at its next write (Superseded) rather than writing over this outcome."""
    with tenant_transaction(rt.db, client_id) as conn:
        row = runs.lock_run(conn, run_id=run_id)
        if row is None or row["status"] in FINAL:
            return False
        runs.start_run(conn, run_id=run_id)
        runs.settle_running_steps(conn, run_id=run_id)
        runs.skip_remaining_steps(conn, run_id=run_id)
        return runs.settle_lost_run(conn, run_id=run_id, error_class="run_lost", error_message=LOST_RUN_MESSAGE)


def _reconnect_needed(run: RunExecution, index: int, provider: Provider, started: float, attempts: int) -> NoReturn:
    _pause_for(run.rt, run.client_id, provider)
    _fail(run, index, "needs_reauth",
          f"{provider.name} no longer accepts Hapex's access; reconnect it to resume.", started, attempts)


def _record_costs(conn: Connection, run: RunExecution, index: int, provider: Provider,
                  llm_usage: list[LLMUsage], calls: int) -> None:
    runs.insert_cost_events(conn, client_id=run.client_id, run_id=run.run_id, step_index=index,
                            cost_events=_cost_events(provider, llm_usage, calls))


def _cost_events(provider: Provider, llm_usage: list[LLMUsage], calls: int) -> list[dict[str, Any]]:
    """One cost event per model call (priced), or one counting the step's provider calls.

    A step's events are inserted by one statement, whose rollup (migration 0026's statement trigger)
    adds to the client's monthly_costs rows in key order and holds them locked until the step commits;
    the events are also listed in model order, as they were inserted when each was its own statement."""
    events = [{"source": "llm", "provider": provider.key, "model": usage.model, "input_tokens": usage.input_tokens,
               "output_tokens": usage.output_tokens,
               "cache_creation_input_tokens": usage.cache_creation_input_tokens,
               "cache_read_input_tokens": usage.cache_read_input_tokens, "price_version": PRICE_VERSION,
               "amount_microusd": llm_cost_microusd(usage.model, usage.input_tokens, usage.output_tokens,
                                                    usage.cache_creation_input_tokens,
                                                    usage.cache_read_input_tokens), "calls": 1}
              for usage in sorted(llm_usage, key=lambda u: u.model)]
    if not llm_usage and calls:
        events.append({"source": "provider_call", "provider": provider.key, "model": None, "input_tokens": None,
                       "output_tokens": None, "cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                       "price_version": PRICE_VERSION, "amount_microusd": 0, "calls": calls})
    return events


def _store_output(conn: Connection, run: RunExecution, index: int, output: dict[str, Any]) -> None:
    """Seal the output in a savepoint: if storing fails for any reason the step's record still
    commits (its effect has happened); only resuming past this step becomes impossible."""
    try:
        with conn.transaction():
            run.rt.vault.seal_step_output(conn, client_id=run.client_id, run_id=run.run_id, step_index=index,
                                          output=output)
    except Exception as exc:
        logger.warning("step output not stored", extra={"client_id": run.client_id, "run_id": run.run_id,
                                                        "step_index": index, "error_class": type(exc).__name__})


def _record_success(run: RunExecution, index: int, provider: Provider, connection: dict[str, Any] | None,
                    result: StepResult, calls: int, started: float, *, finish_run: bool, store_output: bool,
                    stopped: bool = False, begin_next: BeginNext | None = None) -> StepAttempt | None:
    """The step's outcome, costs and (when the client stores outputs) its sealed output; after the
    last step, the run's success too, and after a condition that did not hold, the run's stop and
    its remaining steps skipped, all in the same commit. With begin_next, the next step's first
    attempt begins in that commit too (its connection checked and its credential's access recorded,
    as the first step's are in the run's opening transaction): returned once committed, else None."""
    run_status, error_class, error_message = None, None, None
    if stopped:
        run_status, error_class, error_message = "stopped", STOPPED_BY_CONDITION, stopped_message(index, result.counts)
    elif finish_run:
        run_status = "succeeded"

    def record(conn: Connection) -> int | None:  # the fence and every write but the stored output: one statement
        return runs.record_step_success(
            conn, client_id=run.client_id, run_id=run.run_id, execution=run.execution, step_index=index,
            duration_ms=run.elapsed_ms(started), counts={k: int(v) for k, v in result.counts.items()},
            cost_events=_cost_events(provider, result.llm_usage, calls),
            connection_id=None if connection is None else connection["connection_id"], run_status=run_status,
            error_class=error_class, error_message=error_message)

    following: StepAttempt | None = None
    try:
        with run.transaction_fenced_by(record) as conn:
            if store_output:
                _store_output(conn, run, index, result.output)
            if begin_next is not None:
                try:
                    following = begin_next(conn, output=result.output)
                except (Superseded, DatabaseUnavailable):
                    raise
                except Exception as exc:
                    raise _NextStepNotBegun() from exc
    except _NextStepNotBegun:
        # Beginning the next step failed (a defect of ours): that must not undo this step's success, whose
        # effect has happened, nor its costs. Recorded alone; the next step begins in its own transaction,
        # where a failure is its own.
        with run.transaction_fenced_by(record) as conn:
            if store_output:
                _store_output(conn, run, index, result.output)
        return None
    except BaseException:
        if following is not None:  # its credential, opened in a transaction that did not commit
            following.discard()
        raise
    return following


class _NextStepNotBegun(Exception):
    """The next step's first attempt could not begin in this step's success transaction (rolled back)."""
