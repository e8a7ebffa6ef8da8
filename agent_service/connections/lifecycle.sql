-- insert_connection --
-- A new connection of the transaction's client, active from the start.
INSERT INTO connections (client_id, provider, auth_kind, status, scopes_granted, scopes_granted_at,
                         account_label, secret_hint, access_token_expires_at)
VALUES (%(client_id)s, %(provider)s, %(auth_kind)s, 'active', %(scopes)s, now(),
        %(account_label)s, %(secret_hint)s, %(expires_at)s)
RETURNING connection_id

-- lock_connection_for_update --
-- One connection of the transaction's client, locked while its state changes.
SELECT connection_id, provider, auth_kind, status, scopes_granted
FROM connections
WHERE connection_id = %(connection_id)s
FOR UPDATE

-- reconnect --
-- A reconnected (or widened) connection: active again with what was granted this time.
UPDATE connections
SET status = 'active', status_reason = NULL, scopes_granted = %(scopes)s, scopes_granted_at = now(),
    account_label = coalesce(%(account_label)s, account_label),
    access_token_expires_at = %(expires_at)s, updated_at = now()
WHERE connection_id = %(connection_id)s

-- mark_revoked --
-- A disconnected connection; its reason says whether the provider still has to confirm.
UPDATE connections
SET status = 'revoked', status_reason = %(reason)s, access_token_expires_at = NULL, updated_at = now()
WHERE connection_id = %(connection_id)s

-- delete_credentials --
-- Forget every ciphertext of one connection.
DELETE FROM credentials WHERE connection_id = %(connection_id)s

-- credential_purposes --
-- Which credentials a connection still holds.
SELECT purpose FROM credentials WHERE connection_id = %(connection_id)s

-- pause_automations_using --
-- Pause this client's running automations whose steps use any of these capabilities, or whose poll
-- trigger watches one of these sources.
UPDATE automations
SET status = 'paused', paused_reason = %(reason)s, updated_at = now()
WHERE status = 'enabled'
  AND (EXISTS (SELECT 1 FROM jsonb_array_elements(steps) AS step
               WHERE step ->> 'capability' = ANY(%(capabilities)s))
       OR (trigger ->> 'kind' = 'poll' AND trigger ->> 'source' = ANY(%(poll_sources)s)))
RETURNING automation_id

-- mark_access_reduced --
-- The provider confirmed the grant ended so that a narrower one can replace it: nothing is granted until the client consents again.
UPDATE connections
SET status = 'pending', status_reason = 'access_reduced', scopes_granted = '{}', scopes_granted_at = now(),
    access_token_expires_at = NULL, updated_at = now()
WHERE connection_id = %(connection_id)s

-- delete_credential --
-- Forget one ciphertext of a connection (a refresh token the renewed grant did not replace).
DELETE FROM credentials WHERE connection_id = %(connection_id)s AND purpose = %(purpose)s
