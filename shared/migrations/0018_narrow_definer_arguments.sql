-- Definer functions enforce their own limits, whatever argument the calling role passes.
--
-- A role that may call one of these functions may call it with any value: the function, not
-- its usual caller, has to keep it narrow.

-- Retention: never younger than the 30 days HAPEX_RUN_RETENTION_DAYS allows at its minimum, so
-- that a zero or negative age cannot delete every client's finished runs and cost events.
CREATE OR REPLACE FUNCTION hapex_prune_run_records(p_older_than interval)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        IF p_older_than IS NULL OR p_older_than < interval '30 days' THEN
            RAISE EXCEPTION 'run records are kept at least 30 days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        DELETE FROM public.cost_events WHERE occurred_at < now() - p_older_than;
        DELETE FROM public.runs WHERE queued_at < now() - p_older_than
                                  AND status IN ('succeeded', 'failed', 'cancelled');
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

-- The agent reserves encryptions one credential, or one rotation batch (at most 1000), at a
-- time: a larger count is refused, so a few calls cannot push a key past its 2^32 nonce budget
-- (and so force a rotation, or wrap the count into refusing every encryption).
CREATE OR REPLACE FUNCTION hapex_vault_count_encryptions(p_key_id text, p_count integer)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        total bigint;
    BEGIN
        IF p_count > 1000 THEN
            RAISE EXCEPTION 'at most 1000 encryptions are reserved at a time'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO public.vault_key_usage AS u (key_id, encryptions)
        VALUES (p_key_id, greatest(p_count, 1))
        ON CONFLICT (key_id) DO UPDATE
        SET encryptions = u.encryptions + EXCLUDED.encryptions, last_used_at = now()
        RETURNING u.encryptions INTO total;
        RETURN total;
    END
    $$;

-- Due schedules: never ones due after the transaction's own clock (a future p_now would fire
-- every schedule early), and at most 1000 a call.
CREATE OR REPLACE FUNCTION hapex_due_schedules(p_now timestamptz, p_limit integer)
    RETURNS TABLE (client_id uuid, automation_id uuid, next_run_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT a.client_id, a.automation_id, a.next_run_at
    FROM public.automations a
    WHERE a.status = 'enabled' AND a.trigger ->> 'kind' = 'schedule'
      AND (a.next_run_at IS NULL OR a.next_run_at <= least(p_now, now()))
    ORDER BY a.next_run_at NULLS FIRST
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;
