-- upsert_pending --
-- A fresh, unconfirmed secret for the user, replacing an unconfirmed one; a confirmed one stays.
INSERT INTO user_totp (client_id, user_id, key_id, nonce, ciphertext)
VALUES (%(client_id)s, %(user_id)s, %(key_id)s, %(nonce)s, %(ciphertext)s)
ON CONFLICT (client_id, user_id) DO UPDATE
SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
    created_at = now(), last_step = NULL
WHERE user_totp.confirmed_at IS NULL
RETURNING user_id

-- lock_secret --
-- The user's sealed secret, locked so that two checks of one code cannot both pass.
SELECT key_id, nonce, ciphertext, confirmed_at, last_step
FROM user_totp WHERE client_id = %(client_id)s AND user_id = %(user_id)s
FOR UPDATE

-- accept_step --
-- A code of this time step was accepted: none of it or before is accepted again.
UPDATE user_totp
SET last_step = %(step)s, confirmed_at = coalesce(confirmed_at, CASE WHEN %(confirm)s THEN now() END)
WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- delete_secret --
-- The factor is removed.
DELETE FROM user_totp WHERE client_id = %(client_id)s AND user_id = %(user_id)s
