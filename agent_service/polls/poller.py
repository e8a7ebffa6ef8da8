"""Polling "when something new arrives" triggers: each new item starts exactly one run, however many workers look.

A poll claims the automation's poll state row (FOR UPDATE SKIP LOCKED: a second worker passes it
by), asks the provider what is new since the cursor with that row still locked, and then, in the
same transaction, records the new items' keys (ON CONFLICT DO NOTHING), queues a run for each of at
most PER_POLL_CAP of the items waiting, oldest first, and moves the cursor and the next poll time
on. A worker that dies mid-poll commits nothing: its lock goes with its connection and the next poll
asks again from the same cursor; an item recorded as seen is never queued twice. The first poll
after the automation is enabled or edited (next_run_at NULL) only takes the provider's state as seen.
A poll that finds nothing writes no run and no seen record.

Polls start inside the agent (the periodic job below), so they need no client proof; the
credential is opened as a step opens it, refreshed first when due, audited with reason `poll`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent_service.capabilities import ProviderHTTP, StepContext, StepFailed
from agent_service.connections import repository as connections
from agent_service.connections.tokens import ReconnectNeeded, ensure_access_token
from agent_service.polls import repository as polls
from agent_service.polls.sources import SOURCES
from agent_service.runs.triggers import RunRefused, start_run
from agent_service.runtime import AgentRuntime
from agent_service.vault import Accessor, CredentialKeyMissing, CredentialNotFound, CredentialUnreadable, Purpose
from shared.catalog import AuthKind, PollTrigger, poll_trigger_of
from shared.db import tenant_transaction
from shared.secret import Secret

logger = logging.getLogger(__name__)
# Runs one automation's poll starts at most; the other new items wait for the next polls.
PER_POLL_CAP = 25
DUE_BATCH = 200
POLL_THREADS = 3
POLL_BUDGET_SECONDS = 55.0
POLLER = "worker"


@dataclass(frozen=True)
class PollOutcome:
    """What one poll did: runs started, items still waiting, and whether it only took the state."""

    started: int = 0
    waiting: int = 0
    primed: bool = False
    skipped: bool = False


class _Changed(Exception):
    """The automation was edited, disabled or enabled again during the poll: undo it, poll again later."""


def poll_due_automations(rt: AgentRuntime, now: datetime, *, limit: int = DUE_BATCH, threads: int = POLL_THREADS,
                         budget_seconds: float = POLL_BUDGET_SECONDS,
                         clock: Callable[[], float] = time.monotonic) -> int:
    """Poll every due poll automation (within the budget; the next minute's call carries on); runs started."""
    deadline = clock() + budget_seconds
    tried: set[uuid.UUID] = set()
    started = 0

    def poll(row: Mapping[str, Any]) -> int:
        if clock() >= deadline:
            return 0
        try:
            return poll_automation(rt, client_id=row["client_id"], automation_id=row["automation_id"], now=now).started
        except Exception:
            logger.exception("poll failed", extra={"client_id": row["client_id"],
                                                   "automation_id": row["automation_id"]})
            return 0

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="poller") as pool:
        while clock() < deadline:
            with rt.db.transaction() as conn:
                due = [row for row in polls.due_polls(conn, now=now, limit=limit) if row["automation_id"] not in tried]
            if not due:
                break
            tried.update(row["automation_id"] for row in due)
            started += sum(pool.map(poll, due))
    return started


def poll_automation(rt: AgentRuntime, *, client_id: uuid.UUID, automation_id: uuid.UUID,
                    now: datetime) -> PollOutcome:
    """One poll of one automation, if it is due and no other worker is polling it."""
    try:
        return _poll(rt, client_id, automation_id, now)
    except _Changed:
        return PollOutcome(skipped=True)
    except StepFailed as exc:
        # The provider refused or failed: nothing of this poll was kept; try again at the next interval.
        logger.info("poll failed at the provider", extra={"client_id": client_id, "automation_id": automation_id,
                                                          "error_class": exc.error_class})
        _postpone(rt, client_id, automation_id, now)
        return PollOutcome(skipped=True)


def _poll(rt: AgentRuntime, client_id: uuid.UUID, automation_id: uuid.UUID, now: datetime) -> PollOutcome:
    log = {"client_id": client_id, "automation_id": automation_id}
    with tenant_transaction(rt.db, client_id) as conn:
        state = polls.claim_state(conn, client_id=client_id, automation_id=automation_id)
        if state is None:
            return PollOutcome(skipped=True)  # another worker is polling it
        automation = polls.poll_automation(conn, automation_id=automation_id)
        if automation is None or automation["status"] != "enabled":
            return PollOutcome(skipped=True)
        source = poll_trigger_of(automation["trigger"])
        previous = automation["next_run_at"]
        if source is None or (previous is not None and previous > now):
            return PollOutcome(skipped=True)  # not a poll, or polled since it was found due
        trigger = automation["trigger"]
        options = trigger.get("options") or {}
        every = timedelta(minutes=int(trigger.get("every_minutes", 15)))
        priming = previous is None or state["automation_version"] != automation["version"]
        connection = connections.connection_for_step(conn, provider=source.provider)
        if not _usable(rt, source, connection):
            logger.info("poll skipped: connection not usable", extra=log)
            _next(conn, automation_id, automation["version"], previous, _due_after(now, every))
            return PollOutcome(skipped=True)
        assert connection is not None
        with _credential(rt, client_id, source, connection["connection_id"]) as (ctx, token):
            implementation = SOURCES[source.key]
            if priming:
                cursor = implementation.prime(ctx, token, options)
            else:
                answer = implementation.poll(ctx, token, options, state["cursor"], state["polled_at"],
                                             state["primed_at"])
        if priming:
            polls.prime_state(conn, automation_id=automation_id, version=automation["version"], cursor=cursor)
            _next(conn, automation_id, automation["version"], previous, _due_after(now, every))
            logger.info("poll took the current state as seen", extra=log)
            return PollOutcome(primed=True)
        if answer.reset:
            logger.warning("poll cursor reset by the provider", extra=log)
        polls.record_seen(conn, client_id=client_id, automation_id=automation_id, keys=answer.items)
        started = 0
        for key in polls.waiting_items(conn, automation_id=automation_id, limit=PER_POLL_CAP):
            try:
                run = start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="poll",
                                trigger_item=key)
            except RunRefused:
                raise _Changed() from None
            polls.mark_started(conn, automation_id=automation_id, item_key=key, run_id=run.run_id if run else None)
            started += run is not None
        if answer.items or answer.cursor != state["cursor"]:
            polls.advance_state(conn, automation_id=automation_id, cursor=answer.cursor)
        waiting = polls.count_waiting(conn, automation_id=automation_id) if started >= PER_POLL_CAP else 0
        _next(conn, automation_id, automation["version"], previous, _due_after(now, every))
    if started:
        logger.info("poll started runs", extra={**log, "count": started})
    return PollOutcome(started=started, waiting=waiting)


def _due_after(now: datetime, every: timedelta) -> datetime:
    """The next poll's time: the interval on, at the start of its minute. The job runs once a minute, a
    little after the minute each time; `now + every` to the microsecond would often fall just after the
    job that should take it, so that "every 5 minutes" polled every 6."""
    return (now + every).replace(second=0, microsecond=0)


def _next(conn: Any, automation_id: uuid.UUID, version: int, previous: datetime | None, at: datetime) -> None:
    if not polls.set_next_poll(conn, automation_id=automation_id, version=version, previous=previous, next_run_at=at):
        raise _Changed()


def _postpone(rt: AgentRuntime, client_id: uuid.UUID, automation_id: uuid.UUID, now: datetime) -> None:
    """After a failed poll, the next one at the automation's interval (not every minute)."""
    with tenant_transaction(rt.db, client_id) as conn:
        automation = polls.poll_automation(conn, automation_id=automation_id)
        if automation is None or automation["next_run_at"] is None:
            return  # never taken yet: the next minute tries again
        every = timedelta(minutes=int(automation["trigger"].get("every_minutes", 15)))
        polls.set_next_poll(conn, automation_id=automation_id, version=automation["version"],
                            previous=automation["next_run_at"], next_run_at=_due_after(now, every))


def _usable(rt: AgentRuntime, source: PollTrigger, connection: Mapping[str, Any] | None) -> bool:
    if connection is None or connection["status"] != "active":
        return False
    provider = rt.provider(source.provider)
    return set(source.scopes) <= provider.granted_closure(connection["scopes_granted"])


class _credential:
    """The connection's token for one poll (refreshed first when due), and the context its calls share."""

    def __init__(self, rt: AgentRuntime, client_id: uuid.UUID, source: PollTrigger, connection_id: uuid.UUID) -> None:
        self.rt, self.client_id, self.source, self.connection_id = rt, client_id, source, connection_id
        self._opened: Any = None

    def __enter__(self) -> tuple[StepContext, Secret]:
        rt, provider = self.rt, self.rt.provider(self.source.provider)
        poll_id = uuid.uuid4()
        http = ProviderHTTP(provider, verify=rt.verify, session=rt.http_session(provider.key))
        ctx = StepContext(client_id=self.client_id, run_id=poll_id, step_index=0, http=http, llm=rt.llm,
                          idempotency_key=f"poll:{poll_id}")
        try:
            if provider.auth_kind is AuthKind.OAUTH2:
                ensure_access_token(rt, client_id=self.client_id, connection_id=self.connection_id,
                                    provider=provider, accessor=Accessor(POLLER, reason="token_refresh"))
            self._opened = rt.vault.open_for_step(client_id=self.client_id, connection_id=self.connection_id,
                                                  purpose=Purpose.ACCESS_TOKEN,
                                                  accessor=Accessor(POLLER, reason="poll"))
            token = self._opened.__enter__()
        except ReconnectNeeded:
            raise StepFailed(f"{provider.name} no longer accepts Hapex's access.") from None
        except (CredentialUnreadable, CredentialNotFound, CredentialKeyMissing):
            raise StepFailed(f"{provider.name} cannot be used right now.") from None
        return ctx, token

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.__exit__(*exc)
