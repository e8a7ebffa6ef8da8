-- Housekeeping: OAuth consent requests that expired unused are deleted across clients.
--
-- Only through this definer function, whose own policy admits expired rows alone: the agent's
-- periodic job calls it; no role reads a state or deletes a live one outside its tenant.

GRANT SELECT (expires_at), DELETE ON oauth_states TO hapex_definer;
CREATE POLICY definer_state_prune_read ON oauth_states FOR SELECT TO hapex_definer
    USING (expires_at <= now());
CREATE POLICY definer_state_prune ON oauth_states FOR DELETE TO hapex_definer
    USING (expires_at <= now());

CREATE FUNCTION hapex_prune_expired_oauth_states()
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM public.oauth_states WHERE expires_at <= now();
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;
ALTER FUNCTION hapex_prune_expired_oauth_states() OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_prune_expired_oauth_states() FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_prune_expired_oauth_states() TO hapex_agent;
