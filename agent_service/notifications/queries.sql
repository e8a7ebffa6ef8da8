-- pending_notifications --
-- Notices not yet emailed, across clients (SECURITY DEFINER): ids only, oldest first.
SELECT client_id, notification_id FROM hapex_pending_notifications(%(limit)s)

-- lock_pending_notification --
-- One pending notice of the transaction's client, locked so that one worker alone sends it.
SELECT notification_id, kind, provider, budget_percent, email_attempts
FROM notifications
WHERE notification_id = %(notification_id)s AND email_status = 'pending'
FOR UPDATE SKIP LOCKED

-- notice_recipients --
-- The email addresses of the client's users (SECURITY DEFINER), only to send them its notices.
SELECT email FROM hapex_notice_recipients(%(client_id)s)

-- finish_notification --
-- What became of a notice's email: sent, kept in the app only, no one to send it to, or failed.
UPDATE notifications
SET email_status = %(email_status)s,
    email_attempts = email_attempts + %(attempted)s,
    emailed_at = CASE WHEN %(email_status)s = 'sent' THEN now() ELSE emailed_at END
WHERE notification_id = %(notification_id)s
