-- totp_key_census --
-- Sealed TOTP secrets per key id across every client (SECURITY DEFINER; ids and counts only).
SELECT key_id, secrets FROM hapex_vault_totp_key_census()

-- totp_rotation_batch --
-- The next sealed TOTP secrets not under the primary key, after a (client, user) (ids only).
SELECT client_id, user_id, key_id
FROM hapex_vault_totp_rotation_batch(%(primary_key_id)s, %(after_client)s, %(after_user)s, %(limit)s)

-- lock_totp --
-- One sealed secret of the transaction's client, locked for re-encryption under the primary key.
SELECT key_id, nonce, ciphertext FROM user_totp
WHERE client_id = %(client_id)s AND user_id = %(user_id)s
FOR UPDATE

-- replace_totp --
-- Compare-and-swap on the nonce, which no two encryptions share: a changed row is left alone.
UPDATE user_totp SET key_id = %(key_id)s, nonce = %(nonce)s, ciphertext = %(ciphertext)s
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND nonce = %(old_nonce)s
