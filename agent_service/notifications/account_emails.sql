-- pending_account_emails --
-- Account emails not yet sent, across clients (SECURITY DEFINER): ids only, oldest first.
SELECT client_id, email_id FROM hapex_pending_account_emails(%(limit)s)

-- lock_pending_account_email --
-- One pending account email of the transaction's client, locked so that one worker alone sends it.
SELECT email_id, user_id, kind, link_base, link_ttl, attempts, to_address::text AS to_address
FROM account_emails
WHERE email_id = %(email_id)s AND status = 'pending'
FOR UPDATE SKIP LOCKED

-- recipient --
-- The address of the user the email is for (SECURITY DEFINER, this tenant only).
SELECT hapex_account_email_recipient(%(client_id)s, %(user_id)s) AS email

-- finish_account_email --
-- What became of an account email; a sent link's token hash and expiry are written with it.
UPDATE account_emails
SET status = %(status)s,
    attempts = attempts + %(attempted)s,
    token_hash = %(token_hash)s,
    expires_at = CASE WHEN %(status)s = 'sent' AND link_ttl IS NOT NULL THEN now() + link_ttl END,
    sent_at = CASE WHEN %(status)s = 'sent' THEN now() END
WHERE email_id = %(email_id)s
