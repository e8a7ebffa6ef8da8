-- list_connections --
-- The client's connections to providers, newest first: metadata, never a secret.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted,
       scopes_granted_at, account_label, secret_hint, last_used_at, created_at, updated_at
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

-- active_connection_for --
-- The connection runs use for a provider: the newest active one (as the run engine picks it).
SELECT connection_id, provider, status, scopes_granted
FROM connections
WHERE client_id = %(client_id)s AND provider = %(provider)s AND status = 'active'
ORDER BY updated_at DESC, connection_id
LIMIT 1

-- list_automation_steps --
-- Every saved automation of the client with its trigger and steps, to work out what it needs (a poll needs its scope too).
SELECT automation_id, name, status, trigger, steps
FROM automations
WHERE client_id = %(client_id)s
ORDER BY name, automation_id

-- get_automation_steps --
-- One saved automation of the client with its trigger and steps.
SELECT automation_id, name, status, trigger, steps
FROM automations
WHERE client_id = %(client_id)s AND automation_id = %(automation_id)s

-- automation_statuses --
-- The current status of some of the client's automations, read after a disconnect.
SELECT automation_id, name, status, paused_reason
FROM automations
WHERE client_id = %(client_id)s AND automation_id = ANY(%(automation_ids)s)
ORDER BY name, automation_id

-- broken_connection_for --
-- The newest connection of a provider waiting to be renewed (the provider refused it, or its access was ended to narrow it).
SELECT connection_id, provider, status, scopes_granted
FROM connections
WHERE client_id = %(client_id)s AND provider = %(provider)s AND status IN ('needs_reauth', 'pending')
ORDER BY updated_at DESC, connection_id
LIMIT 1
