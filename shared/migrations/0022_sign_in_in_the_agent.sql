-- The narrow functions the client's proof relies on, closed where the intake could still forge one.
--
-- 1. hapex_set_webhook_secret takes a session secret as its proof, like hapex_session_proves_client:
--    it now bounds that session's age to the 30 days the longest absolute lifetime allows, as the
--    other narrow functions bound what their arguments can reach (0018), so an old secret whose
--    expiry a writer of `expires_at` pushed out cannot set a webhook secret.
CREATE OR REPLACE FUNCTION hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        UPDATE public.automations a
        SET webhook_secret_hash = p_secret_hash, updated_at = now()
        WHERE a.automation_id = p_automation_id
          AND a.client_id = (
              SELECT s.client_id FROM public.sessions s
              WHERE s.session_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
                AND s.expires_at > now()
                AND s.created_at > now() - interval '30 days');
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n = 1;
    END
    $$;

-- 2. A new webhook address travels from the POST that drew it to the one page that shows it split in
--    two halves that are each worthless alone: a one-time pad (random bytes as long as the secret) in
--    the browser's signed session cookie, and the secret XOR that pad in this row, which the redirected
--    page deletes as it reads it. Whoever holds the cookie (it is signed, not encrypted) learns nothing
--    of the secret, nor does a dump of this table; a reveal not read within 10 minutes is useless.
CREATE TABLE webhook_reveals (
    client_id uuid NOT NULL,
    reveal_id uuid NOT NULL DEFAULT gen_random_uuid(),
    automation_id uuid NOT NULL,
    masked bytea NOT NULL CHECK (length(masked) BETWEEN 32 AND 256),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, reveal_id),
    FOREIGN KEY (client_id, automation_id) REFERENCES automations (client_id, automation_id) ON DELETE CASCADE
);
ALTER TABLE webhook_reveals ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_reveals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_reveals
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
GRANT SELECT, INSERT, DELETE ON webhook_reveals TO hapex_intake;
