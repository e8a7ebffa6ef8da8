-- due_for_check --
-- Connections due a refresh across clients (SECURITY DEFINER): ids, provider, expiry and why.
SELECT client_id, connection_id, provider, access_token_expires_at, reason
FROM hapex_connections_due_for_check(%(expiring_before)s, %(unproven_before)s, %(retry_after)s,
                                     %(capabilities)s, %(capability_providers)s, %(limit)s)

-- lock_health --
-- A connection's health counters, locked while the sweep records an outcome.
SELECT status, health_failures FROM connections WHERE connection_id = %(connection_id)s FOR UPDATE

-- record_success --
-- The refresh token worked: proven now, failures forgotten, a failing-provider reason cleared.
UPDATE connections
SET refresh_proven_at = %(now)s,
    health_failures = 0,
    health_failure_day = NULL,
    health_error_class = NULL,
    health_recovered_at = CASE WHEN health_failures > 0 THEN %(now)s ELSE health_recovered_at END,
    status_reason = CASE WHEN status_reason = %(failing_reason)s THEN NULL ELSE status_reason END
WHERE connection_id = %(connection_id)s AND status = 'active'

-- record_failure --
-- A provider failure, counted at most once per day (and afresh after a reconnect); the new count.
UPDATE connections
SET health_failures = CASE
        WHEN health_last_failure_at IS NULL OR scopes_granted_at > health_last_failure_at THEN 1
        WHEN health_failure_day IS DISTINCT FROM %(today)s THEN health_failures + 1
        ELSE health_failures
    END,
    health_failure_day = %(today)s,
    health_last_failure_at = %(now)s,
    health_error_class = %(error_class)s,
    status_reason = coalesce(status_reason, %(failing_reason)s)
WHERE connection_id = %(connection_id)s AND status = 'active'
RETURNING health_failures
