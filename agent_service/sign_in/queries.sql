-- find_login --
-- The user with this address (any client) and the hash to check, through the pre-tenant definer function.
SELECT client_id, user_id, password_hash FROM hapex_find_login(%(email)s)

-- password_hash --
-- One user's hash, in their client's tenant transaction.
SELECT password_hash FROM users WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- set_password_hash --
-- A new hash: a new password (`changed`), or the same one re-hashed at stronger settings.
UPDATE users SET password_hash = %(password_hash)s,
                 password_changed_at = CASE WHEN %(changed)s THEN now() ELSE password_changed_at END
WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- has_second_factor --
-- Whether the user has a second factor: a confirmed TOTP factor or a passkey.
SELECT EXISTS (SELECT 1 FROM user_totp WHERE client_id = %(client_id)s AND user_id = %(user_id)s
               AND confirmed_at IS NOT NULL)
       OR EXISTS (SELECT 1 FROM user_passkeys WHERE client_id = %(client_id)s AND user_id = %(user_id)s)
       AS enrolled

-- start_session --
-- A new session through the definer function, which caps its lifetime; only the secret's hash is kept.
SELECT hapex_start_session(%(client_id)s, %(user_id)s, %(session_hash)s, %(idle)s, %(absolute)s, %(device)s)

-- end_user_sessions --
-- Every session of the user ends (their password changed).
DELETE FROM sessions WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- void_reset_links --
-- A new password stops every reset link of the user.
UPDATE account_emails SET used_at = now()
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND kind = 'reset_password' AND used_at IS NULL

-- insert_ticket --
-- A pending sign-in: the password was right, a code is owed; kept as the ticket's hash.
INSERT INTO sign_in_tickets (client_id, ticket_hash, user_id, expires_at)
VALUES (%(client_id)s, %(ticket_hash)s, %(user_id)s, now() + %(ttl)s)

-- forget_stale_tickets --
-- The user's tickets past their time, dropped when a new one is made.
DELETE FROM sign_in_tickets WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND expires_at <= now()

-- lock_ticket --
-- A live ticket, locked so that two codes cannot both spend it; counts one more attempt.
UPDATE sign_in_tickets SET attempts = attempts + 1
WHERE client_id = %(client_id)s AND ticket_hash = %(ticket_hash)s AND expires_at > now()
  AND attempts < %(max_attempts)s
RETURNING user_id

-- ticket_user --
-- A live ticket's user, without counting an attempt (the passkey options for the second step).
SELECT user_id FROM sign_in_tickets
WHERE client_id = %(client_id)s AND ticket_hash = %(ticket_hash)s AND expires_at > now()
  AND attempts < %(max_attempts)s

-- delete_ticket --
-- A ticket is good once.
DELETE FROM sign_in_tickets WHERE client_id = %(client_id)s AND ticket_hash = %(ticket_hash)s

-- use_recovery_code --
-- Spend one unused recovery code of the user; no row means it is not one.
UPDATE recovery_codes SET used_at = now()
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND code_hash = %(code_hash)s AND used_at IS NULL
RETURNING created_at

-- queue_email_to --
-- An account email to another address than the user's (a new address to confirm), at most
-- `per_window` of this kind per user within `window`.
INSERT INTO account_emails (client_id, user_id, kind, link_base, link_ttl, to_address)
SELECT %(client_id)s, %(user_id)s, %(kind)s, %(link_base)s, %(link_ttl)s, %(to_address)s
WHERE (SELECT count(*) FROM account_emails
       WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND kind = %(kind)s
         AND created_at > now() - %(window)s) < %(per_window)s
RETURNING email_id
