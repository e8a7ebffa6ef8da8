-- due_schedules --
-- Across clients, the enabled schedules with a slot due (SECURITY DEFINER; ids and times only).
SELECT client_id, automation_id, next_run_at FROM hapex_due_schedules(%(now)s, %(limit)s)

-- lock_automation --
-- One automation locked while the scheduler plans its next run (with what start_run needs to start one).
SELECT automation_id, status, version, trigger, steps, next_run_at
FROM automations
WHERE automation_id = %(automation_id)s
FOR UPDATE

-- set_next_run_at --
-- When a schedule fires next.
UPDATE automations SET next_run_at = %(next_run_at)s WHERE automation_id = %(automation_id)s

-- month_to_date_spend --
-- What the client has spent this calendar month (UTC), and its budget; from the monthly rollup of its
-- cost events (migration 0026), a handful of rows whatever the client's size.
SELECT c.monthly_budget_microusd AS budget,
       coalesce((SELECT sum(m.amount_microusd) FROM monthly_costs m
                 WHERE m.month >= date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)
           AS spent
FROM clients c

-- queue_run --
-- A run with its planned steps and its job, in one statement; nothing when its schedule slot or poll item already has one. One recorded cancelled (over budget) has no steps and no job. Given a next_run_at, the schedule's next slot is set as well, whether or not this slot had run already.
WITH run AS (
    INSERT INTO runs (client_id, run_id, automation_id, automation_version, trigger_kind, scheduled_for, trigger_item,
                      status, error_class, error_message, finished_at)
    VALUES (%(client_id)s, %(run_id)s, %(automation_id)s, %(automation_version)s, %(trigger_kind)s,
            %(scheduled_for)s, %(trigger_item)s, %(status)s, %(error_class)s, %(error_message)s,
            CASE WHEN %(status)s = 'queued' THEN NULL ELSE now() END)
    ON CONFLICT DO NOTHING
    RETURNING client_id, run_id, status
), steps AS (
    INSERT INTO run_steps (client_id, run_id, step_index, capability, idempotency_key)
    SELECT run.client_id, run.run_id, step.n - 1, step.capability, run.run_id::text || ':' || (step.n - 1)
    FROM run, unnest(%(capabilities)s::text[]) WITH ORDINALITY AS step(capability, n)
    WHERE run.status = 'queued'
), next_slot AS (
    UPDATE automations SET next_run_at = %(next_run_at)s
    WHERE automation_id = %(automation_id)s AND %(next_run_at)s::timestamptz IS NOT NULL
)
SELECT run.run_id,
       (SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
            %(queue)s, %(task)s, 0, %(lock)s, %(queueing_lock)s, %(args)s::jsonb, %(scheduled_at)s
        )::procrastinate_job_to_defer_v1]) WHERE run.status = 'queued') AS job_ids
FROM run

-- get_failed_run --
-- A run to retry, locked so that two presses of Retry make one new run.
SELECT run_id, automation_id, automation_version, status
FROM runs
WHERE run_id = %(run_id)s
FOR UPDATE

-- retry_of_run --
-- The retry already made of a failed run, if any.
SELECT run_id, status FROM runs WHERE retry_of = %(run_id)s ORDER BY queued_at LIMIT 1

-- insert_retry_run --
-- A queued run that retries a failed one, of the same automation version.
INSERT INTO runs (client_id, run_id, automation_id, automation_version, trigger_kind, status, retry_of)
VALUES (%(client_id)s, %(run_id)s, %(automation_id)s, %(automation_version)s, 'manual', 'queued', %(retry_of)s)

-- reuse_step --
-- A step a retry does not run again: the failed run finished it, and its output is reused.
UPDATE run_steps SET status = 'succeeded', attempt_count = 0, counts = '{"reused": 1}'::jsonb,
                     started_at = now(), finished_at = now(), duration_ms = 0
WHERE run_id = %(run_id)s AND step_index = %(step_index)s

-- insert_run_step --
-- One planned step of a run.
INSERT INTO run_steps (client_id, run_id, step_index, capability, idempotency_key)
VALUES (%(client_id)s, %(run_id)s, %(step_index)s, %(capability)s, %(idempotency_key)s)

-- lock_run --
-- A run locked by the worker executing it.
-- A retry's trigger fields are those of the run it retries.
SELECT r.run_id, r.automation_id, r.automation_version, r.trigger_kind, r.status, r.queued_at, r.started_at,
       r.retry_of, coalesce(o.queued_at, r.queued_at) AS trigger_at,
       coalesce(r.scheduled_for, o.scheduled_for) AS trigger_scheduled_for,
       coalesce(r.trigger_item, o.trigger_item) AS trigger_item
FROM runs r
LEFT JOIN runs o ON o.client_id = r.client_id AND o.run_id = r.retry_of
WHERE r.run_id = %(run_id)s
FOR UPDATE OF r

-- get_run_definition --
-- The automation version a run executes, and whether the automation is still there to run (not archived).
SELECT v.steps, v.trigger, a.store_outputs, a.name, a.status AS automation_status
FROM automation_versions v
JOIN automations a ON a.client_id = v.client_id AND a.automation_id = v.automation_id
WHERE v.automation_id = %(automation_id)s AND v.version = %(version)s

-- claim_run --
-- The rest of a run's opening, in one statement, under the run's lock (taken by lock_run, the statement
-- before, so that what is read here is what the run's last holder committed): the automation version it
-- executes (as get_run_definition), what its steps have recorded so far (as recorded_steps) and, unless it
-- is a queued run whose automation was put away, the run marked running under the next execution number
-- (as start_run; execution is NULL when it was not).
WITH definition AS (
    SELECT v.steps, v.trigger, a.store_outputs, a.name, a.status AS automation_status
    FROM automation_versions v
    JOIN automations a ON a.client_id = v.client_id AND a.automation_id = v.automation_id
    WHERE v.automation_id = %(automation_id)s AND v.version = %(version)s
), started AS (
    UPDATE runs SET status = 'running', started_at = coalesce(started_at, now()), execution = execution + 1
    WHERE run_id = %(run_id)s
      AND NOT (status = 'queued' AND (SELECT automation_status FROM definition) = ANY (%(put_away)s::text[]))
    RETURNING execution
)
SELECT d.steps, d.trigger, d.store_outputs, d.name, d.automation_status,
       (SELECT execution FROM started) AS execution,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('step_index', s.step_index, 'capability', s.capability,
                                                     'status', s.status, 'attempt_count', s.attempt_count,
                                                     'idempotency_key', s.idempotency_key)
                                  ORDER BY s.step_index), '[]'::jsonb)
        FROM run_steps s WHERE s.run_id = %(run_id)s) AS recorded
FROM definition d

-- start_run --
-- Mark a run running under the next execution number, which this execution keeps.
UPDATE runs SET status = 'running', started_at = coalesce(started_at, now()), execution = execution + 1
WHERE run_id = %(run_id)s
RETURNING execution

-- fence_run --
-- The run's current execution, locked until commit: an execution writes only while it is still its own.
SELECT execution FROM runs WHERE run_id = %(run_id)s FOR NO KEY UPDATE

-- finish_run --
-- A run's outcome: status, and for a failure an error class and a safe message.
UPDATE runs
SET status = %(status)s, error_class = %(error_class)s, error_message = %(error_message)s, finished_at = now()
WHERE run_id = %(run_id)s

-- recorded_steps --
-- What a run's steps have recorded so far, in order: where an interrupted run stands.
SELECT step_index, capability, status, attempt_count, idempotency_key
FROM run_steps
WHERE run_id = %(run_id)s
ORDER BY step_index

-- start_step --
-- A step begins an attempt.
UPDATE run_steps
SET status = 'running', attempt_count = attempt_count + 1, started_at = coalesce(started_at, now())
WHERE run_id = %(run_id)s AND step_index = %(step_index)s

-- finish_step --
-- A step's outcome: metadata only.
UPDATE run_steps
SET status = %(status)s, finished_at = now(), duration_ms = %(duration_ms)s, error_class = %(error_class)s,
    safe_message = %(safe_message)s, counts = %(counts)s
WHERE run_id = %(run_id)s AND step_index = %(step_index)s

-- skip_remaining_steps --
-- Steps after a failure never ran.
UPDATE run_steps SET status = 'skipped', safe_message = 'Not run: the run stopped before this step.'
WHERE run_id = %(run_id)s AND status = 'pending'

-- settle_running_steps --
-- A failed run's step still marked running: its outcome is unknown and it is not retried.
UPDATE run_steps
SET status = 'failed', finished_at = now(), error_class = 'outcome_unknown', safe_message = %(safe_message)s
WHERE run_id = %(run_id)s AND status = 'running'

-- settle_lost_run --
-- A run whose job is gone (failed, cancelled or deleted) while it was not final: failed, with the reason.
UPDATE runs
SET status = 'failed', error_class = %(error_class)s, error_message = %(error_message)s, finished_at = now()
WHERE run_id = %(run_id)s AND status IN ('queued', 'running')
RETURNING run_id

-- unfinished_runs --
-- Across clients (SECURITY DEFINER; ids only): runs not final whose job is no longer queued or running.
SELECT client_id, run_id FROM hapex_unfinished_runs(make_interval(secs => %(older_than_seconds)s))

-- insert_cost_events --
-- The billable events of a run's step (a JSON array of them, as record_step_success takes).
INSERT INTO cost_events (client_id, run_id, step_index, source, provider, model, input_tokens, output_tokens,
                         cache_creation_input_tokens, cache_read_input_tokens, price_version, amount_microusd, calls)
SELECT %(client_id)s, %(run_id)s, %(step_index)s, e.source, e.provider, e.model, e.input_tokens, e.output_tokens,
       e.cache_creation_input_tokens, e.cache_read_input_tokens, e.price_version, e.amount_microusd, e.calls
FROM jsonb_to_recordset(%(cost_events)s::jsonb)
     AS e(source text, provider text, model text, input_tokens integer, output_tokens integer,
          cache_creation_input_tokens integer, cache_read_input_tokens integer, price_version text,
          amount_microusd bigint, calls integer)

-- record_step_success --
-- A step's success as one statement (one round trip): the run locked first, as fence_run, and its current
-- execution returned; only while that is still the caller's execution, the step's outcome (as finish_step),
-- its cost events (as insert_cost_events), its connection's last use (to the minute, so that a busy
-- connection's row is not rewritten at every step) and, when the step
-- ends the run, the run's outcome (as finish_run) with the steps after a stop skipped. The caller rolls back
-- when the execution returned is not its own. Each write waits for the fence (an InitPlan on it), so the
-- run's lock is always taken before any step's, as in the engine's other transactions.
WITH fence AS (
    SELECT execution FROM runs WHERE run_id = %(run_id)s FOR NO KEY UPDATE
), step AS (
    UPDATE run_steps
    SET status = 'succeeded', finished_at = now(), duration_ms = %(duration_ms)s, error_class = NULL,
        safe_message = NULL, counts = %(counts)s
    WHERE run_id = %(run_id)s AND step_index = %(step_index)s AND (SELECT execution FROM fence) = %(execution)s
), costs AS (
    INSERT INTO cost_events (client_id, run_id, step_index, source, provider, model, input_tokens, output_tokens,
                             cache_creation_input_tokens, cache_read_input_tokens, price_version, amount_microusd,
                             calls)
    SELECT %(client_id)s, %(run_id)s, %(step_index)s, e.source, e.provider, e.model, e.input_tokens,
           e.output_tokens, e.cache_creation_input_tokens, e.cache_read_input_tokens, e.price_version,
           e.amount_microusd, e.calls
    FROM jsonb_to_recordset(%(cost_events)s::jsonb)
         AS e(source text, provider text, model text, input_tokens integer, output_tokens integer,
              cache_creation_input_tokens integer, cache_read_input_tokens integer, price_version text,
              amount_microusd bigint, calls integer)
    WHERE (SELECT execution FROM fence) = %(execution)s
), touched AS (
    UPDATE connections SET last_used_at = now()
    WHERE connection_id = %(connection_id)s::uuid
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
      AND (SELECT execution FROM fence) = %(execution)s
), skipped AS (
    UPDATE run_steps SET status = 'skipped', safe_message = 'Not run: the run stopped before this step.'
    WHERE run_id = %(run_id)s AND status = 'pending' AND step_index > %(step_index)s
      AND %(run_status)s::text = 'stopped' AND (SELECT execution FROM fence) = %(execution)s
), finished AS (
    UPDATE runs
    SET status = %(run_status)s::text, error_class = %(error_class)s::text, error_message = %(error_message)s::text,
        finished_at = now()
    WHERE run_id = %(run_id)s AND %(run_status)s::text IS NOT NULL AND (SELECT execution FROM fence) = %(execution)s
)
SELECT execution FROM fence
