-- The client's own proof on agent calls (docs/client-proof.md).
--
-- The agent acts for a client only when the call carries a secret that only that client's
-- live use produces: the session cookie a browser just sent, or the secret of a webhook URL.
-- The database keeps only their SHA-256, so the agent checks a secret by hashing it here,
-- through two definer functions that answer yes or no and list nothing.
--
-- The intake's role loses what it would need to forge one: it can no longer read any
-- session hash, write a session row of its choosing, or write a webhook secret hash; those
-- go through narrow definer functions, and a webhook secret is set only with a live session
-- of the automation's client.

-- --- the agent's checks ---------------------------------------------------------------

-- A session secret proves a client while its session is live: unexpired, and younger than the
-- longest absolute lifetime the intake may configure (30 days), which bounds a stolen secret
-- even if its expiry were pushed out.
CREATE FUNCTION hapex_session_proves_client(p_client_id uuid, p_session_secret text)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.sessions s
        WHERE s.session_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
          AND s.client_id = p_client_id
          AND s.expires_at > now()
          AND s.created_at > now() - interval '30 days')
    $$;

-- A webhook secret proves its one automation, while that automation is enabled with a webhook
-- trigger.
CREATE FUNCTION hapex_webhook_proves_client(p_client_id uuid, p_automation_id uuid, p_webhook_secret text)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.automations a
        WHERE a.webhook_secret_hash = pg_catalog.sha256(pg_catalog.convert_to(p_webhook_secret, 'UTF8'))
          AND a.client_id = p_client_id
          AND a.automation_id = p_automation_id
          AND a.status = 'enabled' AND a.trigger ->> 'kind' = 'webhook')
    $$;

ALTER FUNCTION hapex_session_proves_client(uuid, text) OWNER TO hapex_definer;
ALTER FUNCTION hapex_webhook_proves_client(uuid, uuid, text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_session_proves_client(uuid, text),
    hapex_webhook_proves_client(uuid, uuid, text) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_session_proves_client(uuid, text),
    hapex_webhook_proves_client(uuid, uuid, text) TO hapex_agent;

-- --- sessions: the intake names a session only by the hash of a cookie it was sent ---------

REVOKE SELECT, INSERT, UPDATE ON sessions FROM hapex_intake;
-- Enough to sign out every session of one user; never a hash.
GRANT SELECT (client_id, user_id, created_at, last_seen_at, expires_at) ON sessions TO hapex_intake;

GRANT INSERT (client_id, session_hash, user_id, expires_at), UPDATE (last_seen_at, expires_at)
    ON sessions TO hapex_definer;
CREATE POLICY definer_session_start ON sessions FOR INSERT TO hapex_definer WITH CHECK (true);
CREATE POLICY definer_session_touch ON sessions FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_session_end ON sessions FOR DELETE TO hapex_definer USING (true);

-- A new session, created now, expiring within the longest limits the intake may configure.
CREATE FUNCTION hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea,
                                    p_idle interval, p_absolute interval)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    INSERT INTO public.sessions (client_id, session_hash, user_id, expires_at)
    VALUES (p_client_id, p_session_hash, p_user_id,
            now() + least(p_idle, p_absolute, interval '1 day', interval '30 days'))
    $$;

-- Extend a session still within its idle and absolute limits; its user, or no row when it has ended.
CREATE FUNCTION hapex_touch_session(p_session_hash bytea, p_idle interval, p_absolute interval)
    RETURNS TABLE (user_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    UPDATE public.sessions s
    SET last_seen_at = now(),
        expires_at = least(s.created_at + least(p_absolute, interval '30 days'),
                           now() + least(p_idle, interval '1 day'))
    WHERE s.session_hash = p_session_hash
      AND s.expires_at > now()
      AND s.last_seen_at > now() - p_idle
      AND s.created_at > now() - p_absolute
    RETURNING s.user_id
    $$;

-- End the one session with this hash.
CREATE FUNCTION hapex_end_session(p_session_hash bytea)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ DELETE FROM public.sessions WHERE session_hash = p_session_hash $$;

ALTER FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval) OWNER TO hapex_definer;
ALTER FUNCTION hapex_touch_session(bytea, interval, interval) OWNER TO hapex_definer;
ALTER FUNCTION hapex_end_session(bytea) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval),
    hapex_touch_session(bytea, interval, interval), hapex_end_session(bytea) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval),
    hapex_touch_session(bytea, interval, interval), hapex_end_session(bytea) TO hapex_intake;

-- --- webhook secrets: set only with a live session of the automation's client -------------

REVOKE INSERT, UPDATE ON automations FROM hapex_intake;
GRANT INSERT (client_id, automation_id, name, status, paused_reason, version, trigger, steps, store_outputs,
              next_run_at, created_at, updated_at),
      UPDATE (name, status, paused_reason, version, trigger, steps, store_outputs, next_run_at, updated_at)
    ON automations TO hapex_intake;

GRANT UPDATE (webhook_secret_hash, updated_at) ON automations TO hapex_definer;
CREATE POLICY definer_set_webhook ON automations FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

-- Store the hash of the automation's new webhook secret (NULL forgets it), when the session
-- secret given is live and of the automation's client; whether it did.
CREATE FUNCTION hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea)
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
                AND s.expires_at > now());
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n = 1;
    END
    $$;

ALTER FUNCTION hapex_set_webhook_secret(text, uuid, bytea) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_set_webhook_secret(text, uuid, bytea) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_set_webhook_secret(text, uuid, bytea) TO hapex_intake;
