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
