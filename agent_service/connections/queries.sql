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

-- connection_for_step --
-- The connection a step uses for a provider: the newest active one (the intake's pick), else one awaiting reconnection;
-- with its sealed credential for %(purpose)s when one is named (the vault opens it), in the same round trip.
SELECT c.connection_id, c.status, c.scopes_granted, c.access_token_expires_at,
       cr.credential_id, cr.purpose, cr.key_id, cr.nonce, cr.ciphertext, cr.revision
FROM (SELECT connection_id, status, scopes_granted, access_token_expires_at
      FROM connections
      WHERE provider = %(provider)s AND status IN ('active', 'needs_reauth')
      ORDER BY (status = 'active') DESC, updated_at DESC, connection_id
      LIMIT 1) c
LEFT JOIN credentials cr ON cr.connection_id = c.connection_id AND cr.purpose = %(purpose)s::text

-- access_token_expiry --
-- When a connection's access token expires, as stored now.
SELECT access_token_expires_at FROM connections WHERE connection_id = %(connection_id)s

-- lock_connection_expiry --
-- A connection locked by the one worker refreshing its token; the others wait, then re-read.
SELECT connection_id, status, access_token_expires_at
FROM connections
WHERE connection_id = %(connection_id)s
FOR UPDATE

-- save_refreshed_expiry --
-- A refreshed access token's expiry.
UPDATE connections SET access_token_expires_at = %(expires_at)s, last_used_at = now(), updated_at = now()
WHERE connection_id = %(connection_id)s

-- mark_needs_reauth --
-- The provider no longer accepts the connection (refused grant, or failing for days): the client must reconnect it.
UPDATE connections SET status = 'needs_reauth', status_reason = %(reason)s, updated_at = now()
WHERE connection_id = %(connection_id)s AND status = 'active'
