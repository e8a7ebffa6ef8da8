-- list_connections --
-- Every connection of the transaction's client, newest first; metadata only.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted,
       scopes_granted_at, account_label, secret_hint, access_token_expires_at,
       last_used_at, created_at, updated_at
FROM connections
ORDER BY created_at DESC

-- get_connection --
-- One connection of the transaction's client by id.
SELECT connection_id, provider, auth_kind, status, status_reason, scopes_granted,
       scopes_granted_at, account_label, secret_hint, access_token_expires_at,
       last_used_at, created_at, updated_at
FROM connections
WHERE connection_id = %(connection_id)s
