-- session_proves_client --
-- Whether the session secret is a live session of this client (the definer function hashes it; no row is listed).
SELECT hapex_session_proves_client(%(client_id)s, %(secret)s) AS proved

-- webhook_proves_client --
-- Whether the webhook secret is that of this client's automation, enabled with a webhook trigger.
SELECT hapex_webhook_proves_client(%(client_id)s, %(automation_id)s, %(secret)s) AS proved
