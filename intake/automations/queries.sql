-- list_automations --
-- The client's automations, most recently changed first.
SELECT automation_id, name, status, paused_reason, version, trigger,
       jsonb_array_length(steps) AS step_count, next_run_at, updated_at
FROM automations
WHERE client_id = %(client_id)s AND status <> 'deleted'
ORDER BY status = 'archived', updated_at DESC, automation_id

-- get_automation --
-- One automation of the client by id; whether a webhook URL is set, never its hash.
SELECT automation_id, name, status, paused_reason, version, trigger, steps, store_outputs,
       next_run_at, created_at, updated_at, webhook_secret_hash IS NOT NULL AS has_webhook_url
FROM automations
WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s AND status <> 'deleted'

-- set_webhook_secret_hash --
-- Store the SHA-256 of a new webhook secret, or NULL to forget it, through the definer function that needs the request's live session.
SELECT hapex_set_webhook_secret(%(session_secret)s, %(automation_id)s, %(secret_hash)s) AS stored

-- insert_webhook_reveal --
-- One half of a new webhook address on its way to the page that shows it (the pad is in the browser's
-- cookie); this client's reveals never read go first.
WITH stale AS (DELETE FROM webhook_reveals WHERE client_id = %(client_id)s AND created_at < now() - %(ttl)s)
INSERT INTO webhook_reveals (client_id, automation_id, masked)
VALUES (%(client_id)s, %(automation_id)s, %(masked)s)
RETURNING reveal_id

-- take_webhook_reveal --
-- Read a reveal once: it is deleted as it is read, and one older than its lifetime is not read.
DELETE FROM webhook_reveals
WHERE client_id = %(client_id)s AND reveal_id = %(reveal_id)s AND automation_id = %(automation_id)s
RETURNING masked, created_at > now() - %(ttl)s AS live

-- find_webhook --
-- The enabled webhook automation a secret belongs to, through the narrow definer function.
SELECT client_id, automation_id FROM hapex_find_webhook(%(secret_hash)s)

-- recent_webhook_runs --
-- How many runs a webhook started for this automation lately, for the rate limit.
SELECT count(*) AS runs
FROM runs
WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s AND trigger_kind = 'webhook'
  AND queued_at > now() - make_interval(secs => %(seconds)s)

-- provider_connections --
-- Per provider, the connection a run would use (active first, then newest) and what it granted.
SELECT DISTINCT ON (provider) provider, connection_id, status, scopes_granted
FROM connections
WHERE client_id = %(client_id)s AND status IN ('active', 'needs_reauth')
ORDER BY provider, (status = 'active') DESC, updated_at DESC

-- poll_waiting --
-- How many new items a poll trigger has seen and not yet started (the cap per poll): a count only.
SELECT count(*) AS waiting FROM poll_seen
WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s AND started_at IS NULL

-- list_runs --
-- The client's most recent runs, optionally of one automation.
SELECT r.run_id, r.automation_id, a.name AS automation_name, r.automation_version,
       r.trigger_kind, v.trigger ->> 'source' AS trigger_source, r.status, r.error_class, r.queued_at,
       r.started_at, r.finished_at, a.trigger ->> 'timezone' AS timezone
FROM runs r
JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
LEFT JOIN automation_versions v
  ON v.client_id = r.client_id AND v.automation_id = r.automation_id AND v.version = r.automation_version
WHERE r.client_id = %(client_id)s
  AND (%(automation_id)s::uuid IS NULL OR r.automation_id = %(automation_id)s::uuid)
ORDER BY r.queued_at DESC, r.run_id
LIMIT %(limit)s

-- get_run --
-- One run of the client by id, with its safe failure message (never step contents).
SELECT r.run_id, r.automation_id, a.name AS automation_name, a.store_outputs, r.automation_version,
       r.trigger_kind, v.trigger ->> 'source' AS trigger_source, r.scheduled_for, r.status, r.error_class,
       r.error_message, r.queued_at, r.started_at, r.finished_at, r.retry_of, a.trigger ->> 'timezone' AS timezone,
       (SELECT n.run_id FROM runs n WHERE n.client_id = r.client_id AND n.retry_of = r.run_id
        ORDER BY n.queued_at LIMIT 1) AS retried_as
FROM runs r
JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
LEFT JOIN automation_versions v
  ON v.client_id = r.client_id AND v.automation_id = r.automation_id AND v.version = r.automation_version
WHERE r.client_id = %(client_id)s AND r.run_id = %(run_id)s

-- list_run_steps --
-- What each step of a run did: metadata only, never its output.
SELECT step_index, capability, status, attempt_count, started_at, finished_at, duration_ms,
       error_class, safe_message, counts
FROM run_steps
WHERE client_id = %(client_id)s AND run_id = %(run_id)s
ORDER BY step_index

-- run_costs --
-- What one run cost, by source.
SELECT source, count(*) AS events, coalesce(sum(calls), 0) AS calls,
       coalesce(sum(amount_microusd), 0) AS amount_microusd
FROM cost_events
WHERE client_id = %(client_id)s AND run_id = %(run_id)s
GROUP BY source
ORDER BY source

-- costs_by_month --
-- The client's spending per calendar month (UTC) and source since a month's first day (`since`, UTC
-- midnight), from the monthly rollup (migration 0026): the same figures as summing its cost events.
SELECT to_char(month, 'YYYY-MM') AS month, source,
       sum(events)::bigint AS events, sum(calls)::bigint AS calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
       sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
       sum(amount_microusd) AS amount_microusd
FROM monthly_costs
WHERE client_id = %(client_id)s AND month >= (%(since)s::timestamptz AT TIME ZONE 'UTC')::date
GROUP BY 1, 2
ORDER BY 1, 2

-- costs_this_month --
-- The client's spending since the start of this calendar month (UTC), by source and model, from the
-- monthly rollup (migration 0026).
SELECT source, provider, model, sum(events)::bigint AS events, sum(calls)::bigint AS calls,
       sum(input_tokens)::bigint AS input_tokens,
       sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
       sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(amount_microusd) AS amount_microusd
FROM monthly_costs
WHERE client_id = %(client_id)s
  AND month >= date_trunc('month', now() AT TIME ZONE 'UTC')::date
GROUP BY source, provider, model
ORDER BY amount_microusd DESC, source, provider, model

-- monthly_budget --
-- The budget the client set for a month, if any.
SELECT monthly_budget_microusd FROM clients WHERE client_id = %(client_id)s

-- delete_automation --
-- An automation and, with it, its versions, runs, their steps and stored outputs (their cost events stay).
DELETE FROM automations WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s

-- set_monthly_budget --
-- The client's monthly budget in micro-USD, or none (null).
UPDATE clients SET monthly_budget_microusd = %(budget)s, updated_at = now() WHERE client_id = %(client_id)s
