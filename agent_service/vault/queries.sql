-- lock_connection --
-- Lock a connection of the transaction's client so one writer at a time replaces its credentials.
SELECT connection_id
FROM connections
WHERE client_id = %(client_id)s AND connection_id = %(connection_id)s
FOR UPDATE

-- lock_credential --
-- The id and revision of a connection's credential for one purpose, locked for replacing.
SELECT credential_id, revision
FROM credentials
WHERE connection_id = %(connection_id)s AND purpose = %(purpose)s
FOR UPDATE

-- insert_credential --
-- A new credential row; credential_id is chosen first because the ciphertext is bound to it.
INSERT INTO credentials (client_id, credential_id, connection_id, purpose, key_id, nonce, ciphertext)
VALUES (%(client_id)s, %(credential_id)s, %(connection_id)s, %(purpose)s, %(key_id)s,
        %(nonce)s, %(ciphertext)s)

-- replace_credential --
-- Compare-and-swap on revision: a row changed since it was read is left alone (0 rows).
UPDATE credentials
SET key_id = %(key_id)s, nonce = %(nonce)s, ciphertext = %(ciphertext)s
WHERE credential_id = %(credential_id)s AND revision = %(revision)s

-- get_credential --
-- The sealed credential of a connection for one purpose.
SELECT credential_id, connection_id, purpose, key_id, nonce, ciphertext, revision
FROM credentials
WHERE connection_id = %(connection_id)s AND purpose = %(purpose)s

-- get_credential_at_revision --
-- One sealed credential, only if it still has the revision and key id rotation listed.
SELECT credential_id, connection_id, purpose, key_id, nonce, ciphertext, revision
FROM credentials
WHERE credential_id = %(credential_id)s AND revision = %(revision)s AND key_id = %(key_id)s

-- mark_connection_needs_reauth --
-- A connection whose credential cannot be used any more: the client must reconnect.
UPDATE connections
SET status = 'needs_reauth', status_reason = %(reason)s, updated_at = now()
WHERE connection_id = %(connection_id)s AND status IN ('active', 'pending')

-- count_encryptions --
-- Add to a key's encryption count before encrypting (SECURITY DEFINER); the new total.
SELECT hapex_vault_count_encryptions(%(key_id)s, %(count)s) AS encryptions

-- key_usage --
-- How many times one key has encrypted so far (no row: never).
SELECT encryptions FROM vault_key_usage WHERE key_id = %(key_id)s

-- key_census --
-- Credential rows per key id across every client (SECURITY DEFINER; ids and counts only).
SELECT key_id, credentials FROM hapex_vault_key_census()

-- rotation_batch --
-- The next credential rows not under the primary key, after a credential_id (ids only).
SELECT client_id, credential_id, key_id, revision
FROM hapex_vault_rotation_batch(%(primary_key_id)s, %(after)s, %(limit)s)

-- record_access --
-- One handing-out of a credential's plaintext: who, which connection, run and step; never the value.
INSERT INTO credential_access (client_id, connection_id, purpose, reason, service, accessor, run_id, step_index)
VALUES (%(client_id)s, %(connection_id)s, %(purpose)s, %(reason)s, %(service)s, %(accessor)s, %(run_id)s,
        %(step_index)s)
