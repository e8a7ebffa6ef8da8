-- Stored step outputs: only for automations whose client turned store_outputs on, sealed
-- with AES-256-GCM under the credential keys (bound to client, run and step), so that the
-- client can see them and an interrupted run can resume without repeating finished steps.
--
-- The key census and `hapex credentials rotate` cover them through SECURITY DEFINER
-- functions that return ids and key ids only; turning store_outputs off forgets every
-- output stored for that automation, in the same transaction.

ALTER TABLE run_steps ADD CONSTRAINT run_steps_output_sealed_whole CHECK (
    (output_ciphertext IS NULL AND output_nonce IS NULL AND output_key_id IS NULL)
    OR (output_ciphertext IS NOT NULL AND length(output_ciphertext) >= 16
        AND output_nonce IS NOT NULL AND length(output_nonce) = 12
        AND output_key_id ~ '^k1:[0-9a-f]{16}$')
);
CREATE INDEX run_steps_output_key_idx ON run_steps (output_key_id) WHERE output_key_id IS NOT NULL;

-- Outputs per key id across every client (ids and counts only), for the agent's start-up
-- check and for rotation's report.
CREATE FUNCTION hapex_vault_output_key_census()
    RETURNS TABLE (key_id text, outputs bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT s.output_key_id, count(*) FROM public.run_steps s
    WHERE s.output_key_id IS NOT NULL GROUP BY s.output_key_id ORDER BY 1
    $$;

-- Rotation: the next stored outputs (by run, then step) not under the primary key; ids only.
CREATE FUNCTION hapex_vault_output_rotation_batch(p_primary_key_id text, p_after_run uuid,
                                                  p_after_step integer, p_limit integer)
    RETURNS TABLE (client_id uuid, run_id uuid, step_index integer, key_id text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT s.client_id, s.run_id, s.step_index, s.output_key_id
    FROM public.run_steps s
    WHERE s.output_key_id IS NOT NULL AND s.output_key_id <> p_primary_key_id
      AND (p_after_run IS NULL OR (s.run_id, s.step_index) > (p_after_run, coalesce(p_after_step, -1)))
    ORDER BY s.run_id, s.step_index
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

-- Turning store_outputs off forgets what was stored for that automation. The intake makes
-- that change and cannot touch ciphertext itself; this trigger does it, in the automation's
-- own client's transaction only (row-level security follows that client): a change made
-- anywhere else is refused rather than committed with the outputs still stored.
CREATE FUNCTION hapex_forget_step_outputs()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    BEGIN
        IF (SELECT nullif(current_setting('app.client_id', true), '')::uuid) IS DISTINCT FROM NEW.client_id THEN
            RAISE EXCEPTION 'store_outputs can only be turned off in its client''s transaction'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE public.run_steps s
        SET output_ciphertext = NULL, output_nonce = NULL, output_key_id = NULL
        FROM public.runs r
        WHERE r.client_id = NEW.client_id AND r.automation_id = NEW.automation_id
          AND s.client_id = r.client_id AND s.run_id = r.run_id
          AND s.output_key_id IS NOT NULL;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER automations_forget_step_outputs
    AFTER UPDATE OF store_outputs ON automations
    FOR EACH ROW WHEN (OLD.store_outputs AND NOT NEW.store_outputs)
    EXECUTE FUNCTION hapex_forget_step_outputs();

GRANT SELECT (automation_id) ON runs TO hapex_definer;
GRANT SELECT (client_id, run_id, step_index, output_key_id) ON run_steps TO hapex_definer;
GRANT UPDATE (output_ciphertext, output_nonce, output_key_id) ON run_steps TO hapex_definer;
-- The census reads key ids of every client; an update stays within the transaction's client
-- (tenant_isolation) and, restrictively, can only empty an output, never write one.
CREATE POLICY definer_output_census ON run_steps FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_only_forgets_outputs ON run_steps AS RESTRICTIVE FOR UPDATE TO hapex_definer
    USING (true)
    WITH CHECK (output_ciphertext IS NULL AND output_nonce IS NULL AND output_key_id IS NULL);

-- Each execution of a run takes the next number; a worker writes a run's records only while
-- the number is still its own, so a run taken over by another worker (its first worker
-- thought dead) is never carried on by both.
ALTER TABLE runs ADD COLUMN execution integer NOT NULL DEFAULT 0 CHECK (execution >= 0);

ALTER FUNCTION hapex_vault_output_key_census() OWNER TO hapex_definer;
ALTER FUNCTION hapex_vault_output_rotation_batch(text, uuid, integer, integer) OWNER TO hapex_definer;
ALTER FUNCTION hapex_forget_step_outputs() OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_vault_output_key_census(),
    hapex_vault_output_rotation_batch(text, uuid, integer, integer), hapex_forget_step_outputs()
    FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_vault_output_key_census(),
    hapex_vault_output_rotation_batch(text, uuid, integer, integer) TO hapex_agent;
REVOKE EXECUTE ON FUNCTION hapex_forget_step_outputs() FROM hapex_agent;
