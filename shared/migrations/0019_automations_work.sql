-- Automations that do a business's real work (issue 16).
--
-- A run whose "continue only if" step did not hold ends 'stopped': neither a failure (it is
-- not counted or notified as one) nor a success. Like every finished run it is pruned after
-- the retention period, so the retention function learns the new final status.

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'stopped'));

CREATE OR REPLACE FUNCTION hapex_prune_run_records(p_older_than interval)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        -- Migration 0018's floor stays: the function itself keeps every record 30 days at least.
        IF p_older_than IS NULL OR p_older_than < interval '30 days' THEN
            RAISE EXCEPTION 'run records are kept at least 30 days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        DELETE FROM public.cost_events WHERE occurred_at < now() - p_older_than;
        DELETE FROM public.runs WHERE queued_at < now() - p_older_than
                                  AND status IN ('succeeded', 'failed', 'cancelled', 'stopped');
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

-- Retry: a new run of a failed one, linked to it. Steps the failed run finished are reused
-- (recorded as succeeded, their stored outputs sealed again under the new run) when the
-- automation stores outputs; the link goes when the failed run's record is pruned.
ALTER TABLE runs ADD COLUMN retry_of uuid;
ALTER TABLE runs ADD CONSTRAINT runs_retry_of_fkey FOREIGN KEY (client_id, retry_of)
    REFERENCES runs (client_id, run_id) ON DELETE SET NULL (retry_of);
CREATE INDEX runs_client_retry_of_idx ON runs (client_id, retry_of) WHERE retry_of IS NOT NULL;

-- "Test this step" opens the client's credential as a run's step does, and says so in the audit.
ALTER TABLE credential_access DROP CONSTRAINT credential_access_reason_check;
ALTER TABLE credential_access ADD CONSTRAINT credential_access_reason_check
    CHECK (reason IN ('run_step', 'token_refresh', 'revocation', 'health_check', 'other', 'step_test'));

-- Housekeeping: an archived automation is kept but put away (it cannot run until restored); a
-- deleted one whose run records the client chose to keep stays as a hidden row until they go
-- with the retention period. Deleting run records never deletes what they cost: a cost event
-- outlives its run (its run_id becomes null), so this month's spend and budget stay true.
ALTER TABLE automations DROP CONSTRAINT automations_status_check;
ALTER TABLE automations ADD CONSTRAINT automations_status_check
    CHECK (status IN ('draft', 'enabled', 'disabled', 'paused', 'archived', 'deleted'));
ALTER TABLE cost_events DROP CONSTRAINT cost_events_client_id_run_id_fkey;
ALTER TABLE cost_events ADD CONSTRAINT cost_events_client_id_run_id_fkey FOREIGN KEY (client_id, run_id)
    REFERENCES runs (client_id, run_id) ON DELETE SET NULL (run_id);
