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

-- revoke_all_connections --
-- Mark every connection of the client revoked, as its account is about to be deleted.
UPDATE connections
SET status = 'revoked', status_reason = 'account_deleted', updated_at = now()
WHERE client_id = %(client_id)s AND status <> 'revoked'

-- delete_all_credentials --
-- Delete every stored credential of the client.
DELETE FROM credentials WHERE client_id = %(client_id)s
