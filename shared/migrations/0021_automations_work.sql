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
        DELETE FROM public.cost_events WHERE occurred_at < now() - p_older_than;
        DELETE FROM public.runs WHERE queued_at < now() - p_older_than
                                  AND status IN ('succeeded', 'failed', 'cancelled', 'stopped');
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;
