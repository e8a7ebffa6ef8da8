-- find_account --
-- The user with this address (any client), without any hash, through the pre-tenant definer function.
SELECT client_id, user_id FROM hapex_find_account(%(email)s)

-- sign_up --
-- A new client with its owner, through the definer function (the intake adds no user to an existing client).
SELECT hapex_sign_up(%(client_id)s, %(name)s, %(email)s, %(password_hash)s) AS user_id

-- get_account --
-- The signed-in user and their client.
SELECT c.client_id, c.name AS client_name, c.created_at AS client_created_at, c.require_second_factor,
       u.user_id, u.email, u.password_changed_at, u.email_verified_at, u.role
FROM users u
JOIN clients c ON c.client_id = u.client_id
WHERE u.client_id = %(client_id)s AND u.user_id = %(user_id)s

-- set_password_by_link --
-- A reset or invitation link's token and the new password's hash: the password is set, the user's
-- sessions end, their other links stop; no row when the link is not live.
SELECT client_id, user_id, kind, sessions_ended FROM hapex_set_password_by_link(%(token)s, %(password_hash)s)

-- delete_client --
-- The client and, by cascade, every row that carries its client_id.
DELETE FROM clients WHERE client_id = %(client_id)s

-- find_session --
-- Which client and user a session hash belongs to, whether it is still live and whether it was touched lately.
SELECT client_id, user_id,
       expires_at > now() AND last_seen_at > now() - %(idle)s AND created_at > now() - %(absolute)s AS live,
       last_seen_at > now() - %(touch_every)s AS touched_lately
FROM hapex_find_session(%(session_hash)s)

-- touch_session --
-- Extend a session still within its idle and absolute limits; no row means it has ended.
SELECT user_id FROM hapex_touch_session(%(session_hash)s, %(idle)s, %(absolute)s)

-- delete_session --
-- End one session, named by the hash of the cookie it was sent.
SELECT hapex_end_session(%(session_hash)s)

-- delete_user_sessions --
-- End every session of one user, this browser's included.
DELETE FROM sessions WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- throttle_locked --
-- Whether any of these buckets is locked out right now.
SELECT coalesce(bool_or(locked_until > now()), false) AS locked
FROM login_throttle WHERE bucket = ANY(%(buckets)s)

-- throttle_record_failure --
-- Count one failure in a bucket's window and lock the bucket once it reaches the limit.
INSERT INTO login_throttle AS t (bucket, failures, window_started_at, locked_until)
VALUES (%(bucket)s, 1, now(), CASE WHEN %(limit)s <= 1 THEN now() + %(lockout)s END)
ON CONFLICT (bucket) DO UPDATE SET
    failures = CASE WHEN t.window_started_at <= now() - %(window)s THEN 1 ELSE t.failures + 1 END,
    window_started_at = CASE WHEN t.window_started_at <= now() - %(window)s
                             THEN now() ELSE t.window_started_at END,
    locked_until = CASE
        WHEN (CASE WHEN t.window_started_at <= now() - %(window)s THEN 1 ELSE t.failures + 1 END)
             >= %(limit)s
        THEN now() + %(lockout)s
        ELSE t.locked_until END
RETURNING failures, locked_until

-- throttle_attempt --
-- Count an attempt before its password is checked, atomically: parallel guesses queue on the
-- bucket's row, so no more than `limit` of them are ever checked. Says whether this one may go on.
WITH before AS (
    SELECT locked_until FROM login_throttle WHERE bucket = %(bucket)s FOR UPDATE
)
INSERT INTO login_throttle AS t (bucket, failures, window_started_at, locked_until)
VALUES (%(bucket)s, 1, now(), CASE WHEN %(limit)s <= 1 THEN now() + %(lockout)s END)
ON CONFLICT (bucket) DO UPDATE SET
    failures = CASE WHEN t.window_started_at <= now() - %(window)s THEN 1 ELSE t.failures + 1 END,
    window_started_at = CASE WHEN t.window_started_at <= now() - %(window)s
                             THEN now() ELSE t.window_started_at END,
    locked_until = CASE
        WHEN (CASE WHEN t.window_started_at <= now() - %(window)s THEN 1 ELSE t.failures + 1 END)
             >= %(limit)s
        THEN greatest(coalesce(t.locked_until, now()), now() + %(lockout)s)
        ELSE t.locked_until END
RETURNING failures <= %(limit)s
          AND NOT coalesce((SELECT locked_until > now() FROM before), false) AS allowed

-- throttle_undo_attempt --
-- An attempt that succeeded does not count against the address it came from.
UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE bucket = %(bucket)s

-- throttle_clear --
-- Forget a bucket's failures (the account's owner has just signed in).
DELETE FROM login_throttle WHERE bucket = %(bucket)s

-- throttle_forget_stale --
-- Drop buckets whose window and lock ended long ago; they hold nothing worth keeping.
DELETE FROM login_throttle
WHERE window_started_at < now() - interval '1 day'
  AND (locked_until IS NULL OR locked_until < now())

-- queue_account_email --
-- Ask a worker to send an account email to the user's own address (the insert's trigger wakes one), unless this user was sent
-- `per_window` of this kind within `window` already: a flood of requests is not a flood of email.
INSERT INTO account_emails (client_id, user_id, kind, link_base, link_ttl)
SELECT %(client_id)s, %(user_id)s, %(kind)s, %(link_base)s, %(link_ttl)s
WHERE (SELECT count(*) FROM account_emails
       WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND kind = %(kind)s
         AND created_at > now() - %(window)s) < %(per_window)s
RETURNING email_id

-- find_account_link --
-- The account email a link's token belongs to (any client), through the pre-tenant definer function.
SELECT client_id, email_id, user_id, kind, live FROM hapex_find_account_link(%(token_hash)s)

-- use_account_link --
-- Use a link once: it must still be unused and unexpired; no row means it is not.
UPDATE account_emails SET used_at = now()
WHERE client_id = %(client_id)s AND email_id = %(email_id)s AND kind = %(kind)s
  AND used_at IS NULL AND expires_at > now()
RETURNING user_id

-- void_account_links --
-- Every unused link of this kind for this user stops working (the password changed, the address was confirmed).
UPDATE account_emails SET used_at = now()
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND kind = %(kind)s AND used_at IS NULL

-- mark_email_verified --
-- The user proved they read mail at their address.
UPDATE users SET email_verified_at = coalesce(email_verified_at, now())
WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- email_verified --
-- Whether the user's address has been confirmed.
SELECT email_verified_at IS NOT NULL AS verified FROM users
WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- account_state --
-- What every page needs to know of the signed-in user: confirmed address, and a second factor owed.
SELECT u.email_verified_at IS NOT NULL AS verified,
       c.require_second_factor AND NOT EXISTS (
           SELECT 1 FROM user_totp t WHERE t.client_id = u.client_id AND t.user_id = u.user_id
             AND t.confirmed_at IS NOT NULL) AND NOT EXISTS (
           SELECT 1 FROM user_passkeys p WHERE p.client_id = u.client_id AND p.user_id = u.user_id)
           AS second_factor_owed
FROM users u JOIN clients c ON c.client_id = u.client_id
WHERE u.client_id = %(client_id)s AND u.user_id = %(user_id)s

-- set_require_second_factor --
-- The owner's choice for the whole business.
UPDATE clients SET require_second_factor = %(required)s, updated_at = now() WHERE client_id = %(client_id)s

-- has_second_factor --
-- Whether the user has a second factor: a confirmed TOTP secret (never read here) or a passkey.
SELECT EXISTS (SELECT 1 FROM user_totp WHERE client_id = %(client_id)s AND user_id = %(user_id)s
               AND confirmed_at IS NOT NULL)
       OR EXISTS (SELECT 1 FROM user_passkeys WHERE client_id = %(client_id)s AND user_id = %(user_id)s)
       AS enrolled

-- has_totp --
-- Whether the user has a confirmed TOTP factor (the intake never reads its sealed secret).
SELECT EXISTS (SELECT 1 FROM user_totp WHERE client_id = %(client_id)s AND user_id = %(user_id)s
               AND confirmed_at IS NOT NULL) AS enrolled

-- list_passkeys --
-- The user's passkeys as the account page lists them: label and times (their keys stay with the agent).
SELECT passkey_id, label, created_at, last_used_at FROM user_passkeys
WHERE client_id = %(client_id)s AND user_id = %(user_id)s
ORDER BY created_at, passkey_id

-- delete_recovery_codes --
-- Forget every recovery code of the user (new codes replace them, or the factor was removed).
DELETE FROM recovery_codes WHERE client_id = %(client_id)s AND user_id = %(user_id)s

-- insert_recovery_code --
-- One recovery code, as its SHA-256.
INSERT INTO recovery_codes (client_id, user_id, code_hash) VALUES (%(client_id)s, %(user_id)s, %(code_hash)s)

-- use_recovery_code --
-- Spend a recovery code once; no row means it is not one of the user's unused codes.
UPDATE recovery_codes SET used_at = now()
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND code_hash = %(code_hash)s AND used_at IS NULL
RETURNING created_at

-- unused_recovery_codes --
-- How many recovery codes the user has left.
SELECT count(*) AS unused FROM recovery_codes
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND used_at IS NULL

-- list_members --
-- The client's users, owners first, with whether each has confirmed their address and turned on a second factor.
SELECT u.user_id, u.email, u.role, u.created_at, u.email_verified_at IS NOT NULL AS confirmed,
       EXISTS (SELECT 1 FROM user_totp t WHERE t.client_id = u.client_id AND t.user_id = u.user_id
               AND t.confirmed_at IS NOT NULL)
       OR EXISTS (SELECT 1 FROM user_passkeys p WHERE p.client_id = u.client_id AND p.user_id = u.user_id)
       AS second_factor
FROM users u WHERE u.client_id = %(client_id)s
ORDER BY u.role = 'owner' DESC, u.created_at, u.user_id

-- invite_member --
-- An invited user of the owner's client, with no password yet, through the definer function that needs
-- the owner's live session; no row otherwise.
SELECT client_id, user_id FROM hapex_invite_member(%(session_secret)s, %(email)s, %(role)s)

-- delete_member --
-- Remove a user of the client other than the one acting; their sessions, links and factor go with them.
DELETE FROM users WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND user_id <> %(acting_user_id)s

-- set_member_role --
-- Change another user's role.
UPDATE users SET role = %(role)s
WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND user_id <> %(acting_user_id)s

-- list_user_sessions --
-- The user's live sessions for their account page: the device label and times, never a hash.
SELECT device, created_at, last_seen_at
FROM sessions WHERE client_id = %(client_id)s AND user_id = %(user_id)s AND expires_at > now()
ORDER BY last_seen_at DESC

-- change_email_by_link --
-- An address-change link's token: the new address is the user's, and the old one is told; no row when not live.
SELECT client_id, user_id FROM hapex_change_email_by_link(%(token)s)

