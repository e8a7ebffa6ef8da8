"""Reading and writing runs, their steps and cost events; every function takes a tenant connection.

The caller owns the transaction: the engine groups these writes so that a step's record, its
costs and its stored output commit together, and only while its execution still holds the run.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def due_schedules(conn: Connection, *, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Across clients (outside any tenant): which schedules have a slot due."""
    return fetch_all(conn, QUERIES["due_schedules"], now=now, limit=limit)


def lock_automation(conn: Connection, *, automation_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["lock_automation"], automation_id=automation_id)


def set_next_run_at(conn: Connection, *, automation_id: uuid.UUID, next_run_at: datetime) -> None:
    execute(conn, QUERIES["set_next_run_at"], automation_id=automation_id, next_run_at=next_run_at)


def month_to_date_spend(conn: Connection) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["month_to_date_spend"])


def queue_run(conn: Connection, *, capabilities: list[str], next_run_at: datetime | None,
              job: dict[str, Any], **values: Any) -> dict[str, Any] | None:
    """The run, its steps (one per capability, in order) and its job (queue.job_values) in one statement;
    None when this schedule slot or poll item already has a run. A run not queued (cancelled over
    budget) gets neither steps nor job. A next_run_at is set on the automation in the same statement."""
    return fetch_optional(conn, QUERIES["queue_run"], capabilities=capabilities, next_run_at=next_run_at,
                          **job, **values)


def insert_run_step(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID, step_index: int,
                    capability: str, idempotency_key: str) -> None:
    execute(conn, QUERIES["insert_run_step"], client_id=client_id, run_id=run_id, step_index=step_index,
            capability=capability, idempotency_key=idempotency_key)


def lock_run(conn: Connection, *, run_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["lock_run"], run_id=run_id)


def run_definition(conn: Connection, *, automation_id: uuid.UUID, version: int) -> dict[str, Any]:
    return fetch_one(conn, QUERIES["get_run_definition"], automation_id=automation_id, version=version)


def recorded_steps(conn: Connection, *, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["recorded_steps"], run_id=run_id)


def claim_run(conn: Connection, *, run_id: uuid.UUID, automation_id: uuid.UUID, version: int,
              put_away: tuple[str, ...]) -> dict[str, Any]:
    """Under the run's lock (lock_run first): its definition, its recorded steps ("recorded") and the
    execution number this execution takes ("execution"), None when the run is queued and its automation's
    status is one of put_away (the run is then not started)."""
    return fetch_one(conn, QUERIES["claim_run"], run_id=run_id, automation_id=automation_id, version=version,
                     put_away=list(put_away))


def start_run(conn: Connection, *, run_id: uuid.UUID) -> int:
    """The execution number this execution of the run takes."""
    return int(fetch_one(conn, QUERIES["start_run"], run_id=run_id)["execution"])


def run_execution(conn: Connection, *, run_id: uuid.UUID) -> int | None:
    """The run's current execution number, locked until commit; None if the run is gone."""
    row = fetch_optional(conn, QUERIES["fence_run"], run_id=run_id)
    return None if row is None else int(row["execution"])


def finish_run(conn: Connection, *, run_id: uuid.UUID, status: str, error_class: str | None,
               error_message: str | None) -> None:
    execute(conn, QUERIES["finish_run"], run_id=run_id, status=status, error_class=error_class,
            error_message=error_message)


def start_step(conn: Connection, *, run_id: uuid.UUID, step_index: int) -> None:
    """One more attempt of the step."""
    execute(conn, QUERIES["start_step"], run_id=run_id, step_index=step_index)


def finish_step(conn: Connection, *, run_id: uuid.UUID, step_index: int, status: str, duration_ms: int | None,
                error_class: str | None, safe_message: str | None, counts: dict[str, int]) -> None:
    """The step's outcome: metadata only."""
    execute(conn, QUERIES["finish_step"], run_id=run_id, step_index=step_index, status=status,
            duration_ms=duration_ms, error_class=error_class, safe_message=safe_message, counts=Jsonb(counts))


def skip_remaining_steps(conn: Connection, *, run_id: uuid.UUID) -> None:
    execute(conn, QUERIES["skip_remaining_steps"], run_id=run_id)


OUTCOME_UNKNOWN = ("Outcome unknown: Hapex lost track of this step before its result was recorded. "
                   "It was not retried, so that it cannot happen twice.")


def settle_running_steps(conn: Connection, *, run_id: uuid.UUID) -> None:
    """A failed run leaves no step running: the one in flight is 'outcome unknown, not retried'."""
    execute(conn, QUERIES["settle_running_steps"], run_id=run_id, safe_message=OUTCOME_UNKNOWN)


def unfinished_runs(conn: Connection, *, older_than_seconds: float) -> list[dict[str, Any]]:
    """Across clients (outside any tenant): runs not final whose job no longer queues or runs them."""
    return fetch_all(conn, QUERIES["unfinished_runs"], older_than_seconds=older_than_seconds)


def settle_lost_run(conn: Connection, *, run_id: uuid.UUID, error_class: str, error_message: str) -> bool:
    """Fail a run that is not final; False if it had finished meanwhile."""
    return fetch_optional(conn, QUERIES["settle_lost_run"], run_id=run_id, error_class=error_class,
                          error_message=error_message) is not None


def insert_cost_events(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID, step_index: int,
                       cost_events: list[dict[str, Any]]) -> None:
    """A step's billable events, each a dict of cost_events' columns (source, provider, model, tokens,
    price_version, amount_microusd, calls)."""
    if cost_events:
        execute(conn, QUERIES["insert_cost_events"], client_id=client_id, run_id=run_id, step_index=step_index,
                cost_events=Jsonb(cost_events))


def record_step_success(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID, execution: int,
                        step_index: int, duration_ms: int, counts: dict[str, int],
                        cost_events: list[dict[str, Any]], connection_id: uuid.UUID | None,
                        run_status: str | None, error_class: str | None, error_message: str | None) -> int | None:
    """Fence the run and, only while it is still `execution`'s, record the step's success, its costs, its
    connection's use and (run_status not None) the run's outcome, in one statement. The run's current
    execution (None if the run is gone): when it is not `execution`, the caller must roll back."""
    row = fetch_optional(conn, QUERIES["record_step_success"], client_id=client_id, run_id=run_id,
                         execution=execution, step_index=step_index, duration_ms=duration_ms, counts=Jsonb(counts),
                         cost_events=Jsonb(cost_events), connection_id=connection_id, run_status=run_status,
                         error_class=error_class, error_message=error_message)
    return None if row is None else int(row["execution"])


def lock_failed_run(conn: Connection, *, run_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_failed_run"], run_id=run_id)


def retry_of_run(conn: Connection, *, run_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["retry_of_run"], run_id=run_id)


def insert_retry_run(conn: Connection, *, client_id: uuid.UUID, run_id: uuid.UUID, automation_id: uuid.UUID,
                     automation_version: int, retry_of: uuid.UUID) -> None:
    execute(conn, QUERIES["insert_retry_run"], client_id=client_id, run_id=run_id, automation_id=automation_id,
            automation_version=automation_version, retry_of=retry_of)


def reuse_step(conn: Connection, *, run_id: uuid.UUID, step_index: int) -> None:
    execute(conn, QUERIES["reuse_step"], run_id=run_id, step_index=step_index)
