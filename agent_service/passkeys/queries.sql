-- insert_passkey_challenge --
-- A challenge for one user and purpose, good once for five minutes; the user's expired ones go.
WITH swept AS (
    DELETE FROM passkey_challenges
    WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND expires_at < now()
)
INSERT INTO passkey_challenges (client_id, challenge_hash, user_id, purpose, expires_at)
VALUES (%(client_id)s, %(challenge_hash)s, %(user_id)s, %(purpose)s, now() + interval '5 minutes')

-- spend_passkey_challenge --
-- Spend a challenge of this user and purpose by its exact hash: live is true once, within its time.
WITH spent AS (
    DELETE FROM passkey_challenges
    WHERE client_id = %(client_id)s AND challenge_hash = %(challenge_hash)s
      AND user_id = %(user_id)s AND purpose = %(purpose)s
    RETURNING expires_at
)
SELECT coalesce((SELECT expires_at > now() FROM spent), false) AS live

-- issue_passkey_sign_in_challenge --
-- A challenge for a sign-in that names no one yet (a passkey instead of the password).
SELECT hapex_issue_passkey_sign_in_challenge(%(challenge_hash)s)

-- spend_passkey_sign_in_challenge --
-- Spend a sign-in challenge by its exact hash: true once, within its time.
SELECT hapex_spend_passkey_sign_in_challenge(%(challenge_hash)s) AS live

-- user_passkey_credentials --
-- The user's passkeys as a browser is told of them: credential ids and transports.
SELECT credential_id, transports FROM user_passkeys
WHERE client_id = %(client_id)s AND user_id = %(user_id)s
ORDER BY created_at

-- lock_passkey --
-- One passkey of this user by credential id, locked so that two assertions cannot both pass one counter.
SELECT passkey_id, public_key, sign_count FROM user_passkeys
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND credential_id = %(credential_id)s
FOR UPDATE

-- insert_passkey --
-- A verified new passkey; nothing when the user's client already has this credential.
INSERT INTO user_passkeys (client_id, user_id, credential_id, public_key, sign_count, transports, label)
VALUES (%(client_id)s, %(user_id)s, %(credential_id)s, %(public_key)s, %(sign_count)s, %(transports)s, %(label)s)
ON CONFLICT (client_id, credential_id) DO NOTHING
RETURNING passkey_id

-- record_passkey_use --
-- An assertion was accepted: its counter and the time.
UPDATE user_passkeys SET sign_count = %(sign_count)s, last_used_at = now()
WHERE client_id = %(client_id)s AND passkey_id = %(passkey_id)s

-- delete_passkey --
-- One passkey of one user is removed.
DELETE FROM user_passkeys
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND passkey_id = %(passkey_id)s
