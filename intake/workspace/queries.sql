-- list_automations --
-- The client's automations, most recently changed first.
SELECT automation_id, name, status, paused_reason, version, trigger,
       jsonb_array_length(steps) AS step_count, next_run_at, updated_at
FROM automations
WHERE client_id = %(client_id)s
ORDER BY updated_at DESC, automation_id

-- get_automation --
-- One automation of the client by id.
SELECT automation_id, name, status, paused_reason, version, trigger, steps, store_outputs,
       next_run_at, created_at, updated_at
FROM automations
WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s

-- list_connections --
-- The client's connections to providers: metadata, never a secret.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted,
       account_label, last_used_at, created_at
FROM connections
WHERE client_id = %(client_id)s
ORDER BY created_at DESC, connection_id

-- get_connection --
-- One connection of the client by id, with the last four characters of its secret at most.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted,
       scopes_granted_at, account_label, secret_hint, access_token_expires_at, last_used_at,
       created_at, updated_at
FROM connections
WHERE client_id = %(client_id)s AND connection_id = %(connection_id)s

-- list_runs --
-- The client's most recent runs, optionally of one automation.
SELECT r.run_id, r.automation_id, a.name AS automation_name, r.automation_version,
       r.trigger_kind, r.status, r.error_class, r.queued_at, r.started_at, r.finished_at
FROM runs r
JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
WHERE r.client_id = %(client_id)s
  AND (%(automation_id)s::uuid IS NULL OR r.automation_id = %(automation_id)s::uuid)
ORDER BY r.queued_at DESC, r.run_id
LIMIT %(limit)s

-- get_run --
-- One run of the client by id.
SELECT r.run_id, r.automation_id, a.name AS automation_name, r.automation_version,
       r.trigger_kind, r.scheduled_for, r.status, r.error_class, r.queued_at, r.started_at,
       r.finished_at
FROM runs r
JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
WHERE r.client_id = %(client_id)s AND r.run_id = %(run_id)s

-- list_run_steps --
-- What each step of a run did: metadata only, never its output.
SELECT step_index, capability, status, attempt_count, started_at, finished_at, duration_ms,
       error_class, safe_message, counts
FROM run_steps
WHERE client_id = %(client_id)s AND run_id = %(run_id)s
ORDER BY step_index

-- costs_this_month --
-- The client's spending since the start of this calendar month (UTC), by source and model.
SELECT source, provider, model, count(*) AS events,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(amount_microusd) AS amount_microusd
FROM cost_events
WHERE client_id = %(client_id)s
  AND occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY source, provider, model
ORDER BY amount_microusd DESC, source, provider, model

-- monthly_budget --
-- The budget the client set for a month, if any.
SELECT monthly_budget_microusd FROM clients WHERE client_id = %(client_id)s
