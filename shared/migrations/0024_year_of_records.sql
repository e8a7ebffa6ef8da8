-- A year of records (issue 20): what a busy deployment's tables need after 400 days.
--
-- A run's cost events by run: the run page's costs and the foreign key's ON DELETE SET NULL
-- (every pruned or deleted run looks up its cost events) otherwise read every cost event of
-- the client, a million for a big one, once per run.
CREATE INDEX cost_events_client_run_idx ON cost_events (client_id, run_id) WHERE run_id IS NOT NULL;

-- The retention prune finds the oldest records by age across clients; without these it reads
-- both tables whole, once per batch.
CREATE INDEX runs_queued_idx ON runs (queued_at);
CREATE INDEX cost_events_occurred_idx ON cost_events (occurred_at);

-- The prune deletes a batch at a time, each its own short transaction, so that no lock it
-- takes is held for the time a whole day's deletion needs; the caller repeats until a batch
-- deletes nothing. The 30-day floor stays and the batch is at most 5000 of each table. It keeps
-- what migration 0023 added to the prune (seen poll items, automations deleted with records kept).
DROP FUNCTION hapex_prune_run_records(interval);
-- Ids only: the batch names the cost events and seen items it deletes by their keys.
GRANT SELECT (client_id, cost_event_id) ON cost_events TO hapex_definer;
GRANT SELECT (client_id, automation_id, item_key) ON poll_seen TO hapex_definer;
-- The seen records of items that started a run, found by age without reading the table whole.
CREATE INDEX poll_seen_started_idx ON poll_seen (started_at) WHERE started_at IS NOT NULL;

CREATE FUNCTION hapex_prune_run_records(p_older_than interval, p_limit integer)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        cutoff timestamptz;
        costs integer;
        n integer;
        seen integer;
        gone integer;
    BEGIN
        IF p_older_than IS NULL OR p_older_than < interval '30 days' THEN
            RAISE EXCEPTION 'run records are kept at least 30 days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_limit IS NULL OR p_limit < 1 OR p_limit > 5000 THEN
            RAISE EXCEPTION 'a prune batch is 1 to 5000 records'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        cutoff := now() - p_older_than;
        DELETE FROM public.cost_events
        WHERE (client_id, cost_event_id) IN (SELECT client_id, cost_event_id FROM public.cost_events
                                             WHERE occurred_at < cutoff
                                             ORDER BY occurred_at LIMIT p_limit);
        GET DIAGNOSTICS costs = ROW_COUNT;
        DELETE FROM public.runs
        WHERE (client_id, run_id) IN (SELECT client_id, run_id FROM public.runs
                                      WHERE queued_at < cutoff
                                        AND status IN ('succeeded', 'failed', 'cancelled', 'stopped')
                                      ORDER BY queued_at LIMIT p_limit);
        GET DIAGNOSTICS n = ROW_COUNT;
        -- Migration 0023's housekeeping, a batch at a time as well: the seen records of items that
        -- started their run long ago, and automations deleted with their records kept, once no run is left.
        DELETE FROM public.poll_seen
        WHERE (client_id, automation_id, item_key) IN (
            SELECT client_id, automation_id, item_key FROM public.poll_seen
            WHERE started_at IS NOT NULL AND started_at < cutoff
            ORDER BY started_at LIMIT p_limit);
        GET DIAGNOSTICS seen = ROW_COUNT;
        DELETE FROM public.automations a
        WHERE (a.client_id, a.automation_id) IN (
            SELECT d.client_id, d.automation_id FROM public.automations d
            WHERE d.status = 'deleted' AND d.updated_at < cutoff
              AND NOT EXISTS (SELECT 1 FROM public.runs r WHERE r.automation_id = d.automation_id)
            LIMIT p_limit);
        GET DIAGNOSTICS gone = ROW_COUNT;
        RETURN n + costs + seen + gone;
    END
    $$;

ALTER FUNCTION hapex_prune_run_records(interval, integer) OWNER TO hapex_definer;
REVOKE ALL ON FUNCTION hapex_prune_run_records(interval, integer) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_prune_run_records(interval, integer) TO hapex_agent;
