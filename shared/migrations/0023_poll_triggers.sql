-- "When something new arrives" (issue 16): poll triggers that start one run per new item.
--
-- An enabled automation whose trigger is a poll is polled when its next_run_at is due (NULL
-- after it was enabled or edited: that first poll takes the provider's current state as seen
-- and starts nothing). poll_states holds the provider's cursor (a Gmail history id, a sheet's
-- row count, a Calendar sync token) and poll_seen the ids of the items seen (provider ids, or
-- a row number with a hash of the row): never an item's contents. A poll locks its state row,
-- asks the provider, and then in one transaction records the new ids (ON CONFLICT DO NOTHING),
-- queues a run for each (at most a cap per poll; the rest wait, started_at NULL, for the next
-- polls) and moves the cursor on. A run carries only its item's provider id (runs.trigger_item)
-- and reads the item's fields from the provider when it starts.

ALTER TABLE runs DROP CONSTRAINT runs_trigger_kind_check;
ALTER TABLE runs ADD CONSTRAINT runs_trigger_kind_check
    CHECK (trigger_kind IN ('manual', 'schedule', 'webhook', 'poll'));
ALTER TABLE runs ADD COLUMN trigger_item text CHECK (length(trigger_item) BETWEEN 1 AND 300);
ALTER TABLE runs ADD CONSTRAINT runs_poll_has_item CHECK (trigger_kind <> 'poll' OR trigger_item IS NOT NULL);
-- Belt and braces beside poll_seen: one run per item of an automation.
CREATE UNIQUE INDEX runs_poll_item_key ON runs (client_id, automation_id, trigger_item) WHERE trigger_kind = 'poll';

CREATE TABLE poll_states (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    automation_id uuid NOT NULL,
    -- The automation version the cursor was taken for: an edit takes the state again.
    automation_version integer NOT NULL,
    -- The provider's cursor: ids, counts and tokens only (a history id, a row count, a sync token).
    cursor jsonb NOT NULL DEFAULT '{}',
    primed_at timestamptz NOT NULL DEFAULT now(),
    polled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, automation_id),
    FOREIGN KEY (client_id, automation_id) REFERENCES automations (client_id, automation_id) ON DELETE CASCADE
);

CREATE TABLE poll_seen (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    automation_id uuid NOT NULL,
    item_key text NOT NULL CHECK (length(item_key) BETWEEN 1 AND 300),
    -- The order items were seen in: waiting items start oldest first.
    position bigint GENERATED ALWAYS AS IDENTITY,
    seen_at timestamptz NOT NULL DEFAULT now(),
    -- NULL while the item waits for a later poll (the cap per poll); then the run it started.
    started_at timestamptz,
    run_id uuid,
    PRIMARY KEY (client_id, automation_id, item_key),
    FOREIGN KEY (client_id, automation_id) REFERENCES automations (client_id, automation_id) ON DELETE CASCADE
);
CREATE INDEX poll_seen_waiting_idx ON poll_seen (client_id, automation_id, position) WHERE started_at IS NULL;

ALTER TABLE poll_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE poll_states FORCE ROW LEVEL SECURITY;
ALTER TABLE poll_seen ENABLE ROW LEVEL SECURITY;
ALTER TABLE poll_seen FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON poll_states
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON poll_seen
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON poll_states, poll_seen TO hapex_agent;
-- The automation's page says how many new items wait for the next polls: counts, never contents.
GRANT SELECT (client_id, automation_id, started_at) ON poll_seen TO hapex_intake;

-- The credential audit names a poll's and a poll run's provider reads.
ALTER TABLE credential_access DROP CONSTRAINT credential_access_reason_check;
ALTER TABLE credential_access ADD CONSTRAINT credential_access_reason_check
    CHECK (reason IN ('run_step', 'token_refresh', 'revocation', 'health_check', 'other', 'step_test',
                      'poll', 'trigger_item'));

-- Across clients, the enabled poll automations due (ids and times only), as hapex_due_schedules.
CREATE FUNCTION hapex_due_polls(p_now timestamptz, p_limit integer)
    RETURNS TABLE (client_id uuid, automation_id uuid, next_run_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT a.client_id, a.automation_id, a.next_run_at
    FROM public.automations a
    WHERE a.status = 'enabled' AND a.trigger ->> 'kind' = 'poll'
      AND (a.next_run_at IS NULL OR a.next_run_at <= least(p_now, now()))
    ORDER BY a.next_run_at NULLS FIRST
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;
ALTER FUNCTION hapex_due_polls(timestamptz, integer) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_due_polls(timestamptz, integer) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_due_polls(timestamptz, integer) TO hapex_agent;

-- Retention also sweeps what outlives its runs: an automation deleted with "keep records" stays as a
-- hidden 'deleted' row until its run records have gone with the retention period, and then goes too;
-- and a poll's record of an item it started is kept as long as a run record would be.
GRANT SELECT (updated_at) ON automations TO hapex_definer;
GRANT DELETE ON automations TO hapex_definer;
GRANT SELECT (automation_id) ON runs TO hapex_definer;
GRANT SELECT (started_at, seen_at), DELETE ON poll_seen TO hapex_definer;
CREATE POLICY definer_prune_deleted_automations ON automations FOR DELETE TO hapex_definer
    USING (status = 'deleted');
CREATE POLICY definer_prune_seen ON poll_seen FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_prune_seen_delete ON poll_seen FOR DELETE TO hapex_definer USING (started_at IS NOT NULL);

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
        DELETE FROM public.poll_seen WHERE started_at IS NOT NULL AND started_at < now() - p_older_than;
        DELETE FROM public.automations a
        WHERE a.status = 'deleted' AND a.updated_at < now() - p_older_than
          AND NOT EXISTS (SELECT 1 FROM public.runs r WHERE r.automation_id = a.automation_id);
        RETURN n;
    END
    $$;
