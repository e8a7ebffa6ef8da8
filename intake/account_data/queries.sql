-- export_client --
-- The client's own row.
SELECT client_id, name, status, monthly_budget_microusd, created_at, updated_at
FROM clients WHERE client_id = %(client_id)s

-- export_users --
-- The client's users, without their password hashes.
SELECT user_id, email, email_verified_at, password_changed_at, created_at
FROM users WHERE client_id = %(client_id)s ORDER BY created_at, user_id

-- export_account_emails --
-- Every account email Hapex sent the client's users: kind and times, never a token or its hash.
SELECT email_id, user_id, kind, status, created_at, sent_at, expires_at, used_at
FROM account_emails WHERE client_id = %(client_id)s ORDER BY created_at, email_id

-- export_second_factors --
-- Which users turned on two-step sign-in, and when; never the sealed secret.
SELECT user_id, confirmed_at, created_at
FROM user_totp WHERE client_id = %(client_id)s ORDER BY created_at, user_id

-- export_recovery_codes --
-- Each user's recovery codes by when they were made and used; never a code or its hash.
SELECT user_id, created_at, used_at
FROM recovery_codes WHERE client_id = %(client_id)s ORDER BY user_id, created_at, used_at

-- export_passkeys --
-- Each user's passkeys: name and times (their public keys and counters are the agent's to read).
SELECT passkey_id, user_id, label, created_at, last_used_at
FROM user_passkeys WHERE client_id = %(client_id)s ORDER BY user_id, created_at, passkey_id

-- export_automations --
-- The client's automations as defined now (the webhook secret's hash is left out).
SELECT automation_id, name, status, paused_reason, version, trigger, steps, store_outputs, next_run_at,
       created_at, updated_at
FROM automations WHERE client_id = %(client_id)s ORDER BY created_at, automation_id

-- export_automation_versions --
-- Every version each automation has had.
SELECT automation_id, version, trigger, steps, created_at
FROM automation_versions WHERE client_id = %(client_id)s ORDER BY automation_id, version

-- export_connections --
-- The client's connections: metadata only, never a credential or any part of one.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted, scopes_granted_at,
       account_label, access_token_expires_at, last_used_at, refresh_proven_at, health_failures,
       health_recovered_at, created_at, updated_at
FROM connections WHERE client_id = %(client_id)s ORDER BY created_at, connection_id

-- export_runs --
-- Every run the client's automations made.
SELECT run_id, automation_id, automation_version, trigger_kind, scheduled_for, trigger_item, status, error_class,
       error_message, queued_at, started_at, finished_at
FROM runs WHERE client_id = %(client_id)s ORDER BY queued_at, run_id

-- export_run_steps --
-- What each step of each run did: metadata only.
SELECT run_id, step_index, capability, status, attempt_count, started_at, finished_at, duration_ms, error_class,
       safe_message, counts
FROM run_steps WHERE client_id = %(client_id)s ORDER BY run_id, step_index

-- export_cost_events --
-- Everything the client was charged for.
SELECT cost_event_id, run_id, step_index, source, provider, model, input_tokens, cache_creation_input_tokens,
       cache_read_input_tokens, output_tokens, calls,
       price_version, amount_microusd, occurred_at
FROM cost_events WHERE client_id = %(client_id)s ORDER BY occurred_at, cost_event_id

-- export_monthly_costs --
-- What the client spent per month (UTC), source, provider and model: kept after the retention prune
-- has deleted the month's cost events.
SELECT to_char(month, 'YYYY-MM') AS month, source, provider, model, events, calls, input_tokens,
       cache_creation_input_tokens, cache_read_input_tokens, output_tokens, amount_microusd
FROM monthly_costs WHERE client_id = %(client_id)s ORDER BY month, source, provider, model NULLS FIRST

-- export_chat_drafts --
-- The client's build-chat conversations and their latest proposals.
SELECT draft_id, proposal, proposal_summary, proposal_revision, prompt_version, automation_id, approved_revision,
       created_at, updated_at
FROM chat_drafts WHERE client_id = %(client_id)s ORDER BY created_at, draft_id

-- export_chat_messages --
-- Every message of the client's build chats.
SELECT message_id, draft_id, role, content, created_at
FROM chat_messages WHERE client_id = %(client_id)s ORDER BY created_at, message_id

-- export_notifications --
-- Every notice Hapex gave the client, and whether it was emailed.
SELECT notification_id, kind, connection_id, automation_id, provider, budget_percent, created_at, email_status,
       emailed_at
FROM notifications WHERE client_id = %(client_id)s ORDER BY created_at, notification_id

-- export_credential_access --
-- Every time a credential of the client was decrypted: by what, for which run and step, when.
SELECT access_id, connection_id, purpose, reason, service, accessor, run_id, step_index, accessed_at
FROM credential_access WHERE client_id = %(client_id)s ORDER BY accessed_at, access_id

-- recent_notices --
-- The client's latest notices, with the name of the automation one is about.
SELECT n.notification_id, n.kind, n.connection_id, n.automation_id, n.provider, n.budget_percent, n.created_at,
       a.name AS automation_name, a.status AS automation_status, a.paused_reason, c.status AS connection_status
FROM notifications n
LEFT JOIN automations a ON a.client_id = n.client_id AND a.automation_id = n.automation_id
LEFT JOIN connections c ON c.client_id = n.client_id AND c.connection_id = n.connection_id
WHERE n.client_id = %(client_id)s AND n.created_at > now() - make_interval(days => %(days)s)
ORDER BY n.created_at DESC, n.notification_id
LIMIT %(limit)s

-- connection_usage --
-- When a connection's credentials were last decrypted, by which runs and steps.
SELECT c.accessed_at, c.purpose, c.reason, c.run_id, c.step_index, a.name AS automation_name
FROM credential_access c
LEFT JOIN runs r ON r.client_id = c.client_id AND r.run_id = c.run_id
LEFT JOIN automations a ON a.client_id = r.client_id AND a.automation_id = r.automation_id
WHERE c.client_id = %(client_id)s AND c.connection_id = %(connection_id)s
ORDER BY c.accessed_at DESC, c.access_id
LIMIT %(limit)s
