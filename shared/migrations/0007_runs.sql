-- The run engine: scheduling across clients, retention, counted provider calls.

-- Provider calls are counted per step; LLM calls carry tokens and an amount.
ALTER TABLE cost_events ADD COLUMN calls integer NOT NULL DEFAULT 1 CHECK (calls >= 0);

-- Hashed secret of an automation's inbound webhook URL (the URL itself is shown once).
ALTER TABLE automations ADD COLUMN webhook_secret_hash bytea UNIQUE
    CHECK (webhook_secret_hash IS NULL OR length(webhook_secret_hash) = 32);

-- Enabled schedules that are due (or have never been planned): ids and times only.
CREATE FUNCTION hapex_due_schedules(p_now timestamptz, p_limit integer)
    RETURNS TABLE (client_id uuid, automation_id uuid, next_run_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT a.client_id, a.automation_id, a.next_run_at
    FROM public.automations a
    WHERE a.status = 'enabled' AND a.trigger ->> 'kind' = 'schedule'
      AND (a.next_run_at IS NULL OR a.next_run_at <= p_now)
    ORDER BY a.next_run_at NULLS FIRST
    LIMIT p_limit
    $$;

-- Runs left 'running' or 'queued' by a worker that died: ids only, for recovery.
CREATE FUNCTION hapex_unfinished_runs(p_older_than interval)
    RETURNS TABLE (client_id uuid, run_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT r.client_id, r.run_id FROM public.runs r
    WHERE r.status IN ('queued', 'running') AND r.queued_at < now() - p_older_than
      AND NOT EXISTS (SELECT 1 FROM public.procrastinate_jobs j
                      WHERE j.queueing_lock = 'run:' || r.run_id::text AND j.status IN ('todo', 'doing'))
    $$;

-- Retention: delete run records and cost events older than the given age; how many runs.
CREATE FUNCTION hapex_prune_run_records(p_older_than interval)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM public.cost_events WHERE occurred_at < now() - p_older_than;
        DELETE FROM public.runs WHERE queued_at < now() - p_older_than
                                  AND status IN ('succeeded', 'failed', 'cancelled');
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

GRANT SELECT (client_id, automation_id, status, trigger, next_run_at) ON automations TO hapex_definer;
GRANT SELECT (client_id, run_id, status, queued_at) ON runs TO hapex_definer;
GRANT DELETE ON runs TO hapex_definer;
GRANT SELECT (occurred_at), DELETE ON cost_events TO hapex_definer;
GRANT SELECT (queueing_lock, status) ON procrastinate_jobs TO hapex_definer;
CREATE POLICY definer_due_schedules ON automations FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_prune_runs ON runs FOR DELETE TO hapex_definer USING (true);
CREATE POLICY definer_prune_costs ON cost_events FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_prune_costs_delete ON cost_events FOR DELETE TO hapex_definer USING (true);

ALTER FUNCTION hapex_due_schedules(timestamptz, integer) OWNER TO hapex_definer;
ALTER FUNCTION hapex_unfinished_runs(interval) OWNER TO hapex_definer;
ALTER FUNCTION hapex_prune_run_records(interval) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_due_schedules(timestamptz, integer), hapex_unfinished_runs(interval),
    hapex_prune_run_records(interval) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_due_schedules(timestamptz, integer), hapex_unfinished_runs(interval),
    hapex_prune_run_records(interval) TO hapex_agent;
