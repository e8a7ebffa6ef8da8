-- Inbound webhook triggers: finding an automation by the hash of its secret URL.
--
-- The caller of /hooks/<secret> is not signed in, so the intake cannot know the client
-- before the lookup. This function answers only for an enabled automation whose trigger
-- is a webhook, and only with its ids: a disabled or paused automation, another kind of
-- trigger and an unknown secret all look the same (no row).

CREATE FUNCTION hapex_find_webhook(p_secret_hash bytea)
    RETURNS TABLE (client_id uuid, automation_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT a.client_id, a.automation_id
    FROM public.automations a
    WHERE a.webhook_secret_hash = p_secret_hash
      AND a.status = 'enabled' AND a.trigger ->> 'kind' = 'webhook'
    $$;

GRANT SELECT (webhook_secret_hash) ON automations TO hapex_definer;
CREATE POLICY definer_find_webhook ON automations FOR SELECT TO hapex_definer
    USING (webhook_secret_hash IS NOT NULL);

ALTER FUNCTION hapex_find_webhook(bytea) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_find_webhook(bytea) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_find_webhook(bytea) TO hapex_intake;
