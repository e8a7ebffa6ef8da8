-- Service roles and what each may touch.
--
-- hapex_intake and hapex_agent log in, own nothing, are not superusers and cannot bypass
-- row-level security. Lookups made before a client is known go through the SECURITY
-- DEFINER functions below, owned by hapex_definer (NOLOGIN), whose own policies admit
-- only the columns each function returns.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['hapex_intake', 'hapex_agent'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hapex_definer') THEN
        CREATE ROLE hapex_definer NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- The migrating role must be able to hand functions to hapex_definer.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT hapex_definer TO %I', current_user);
    END IF;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO hapex_intake, hapex_agent', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO hapex_intake, hapex_agent, hapex_definer;

-- intake: accounts, sessions, automations it edits; reads of what the agent records.
GRANT SELECT, INSERT, DELETE ON clients TO hapex_intake;
GRANT UPDATE (name, monthly_budget_microusd, updated_at) ON clients TO hapex_intake;
GRANT SELECT, INSERT, DELETE ON users TO hapex_intake;
GRANT UPDATE (password_hash, password_changed_at) ON users TO hapex_intake;
GRANT SELECT, INSERT, DELETE ON sessions TO hapex_intake;
GRANT UPDATE (last_seen_at, expires_at) ON sessions TO hapex_intake;
GRANT SELECT, INSERT, UPDATE, DELETE ON automations, automation_versions TO hapex_intake;
GRANT SELECT ON connections, runs, cost_events TO hapex_intake;
GRANT SELECT (client_id, credential_id, connection_id, purpose, created_at, updated_at)
    ON credentials TO hapex_intake;
GRANT SELECT (client_id, run_id, step_index, capability, status, attempt_count, started_at,
              finished_at, duration_ms, error_class, safe_message, counts)
    ON run_steps TO hapex_intake;
GRANT SELECT, INSERT, DELETE ON chat_messages TO hapex_intake;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO hapex_intake;

-- agent: connections and their credentials, runs and their records.
GRANT SELECT ON clients, automation_versions, chat_messages TO hapex_agent;
GRANT SELECT ON automations TO hapex_agent;
GRANT UPDATE (status, paused_reason, next_run_at, updated_at) ON automations TO hapex_agent;
GRANT SELECT, INSERT, UPDATE, DELETE ON connections, credentials, runs, run_steps, cost_events
    TO hapex_agent;

-- agent: the job queue (procrastinate). Jobs carry ids only, never customer content.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    procrastinate_workers, procrastinate_jobs, procrastinate_periodic_defers, procrastinate_events
    TO hapex_agent;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO hapex_agent;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO hapex_agent;

-- Pre-tenant lookups: each returns only what its one step needs.
GRANT SELECT (client_id, user_id, email, password_hash) ON users TO hapex_definer;
GRANT SELECT, DELETE ON sessions TO hapex_definer;
CREATE POLICY definer_login_lookup ON users FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_session_lookup ON sessions FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_session_prune ON sessions FOR DELETE TO hapex_definer
    USING (expires_at < now());

-- A login: the user with this email, if any, and the hash to verify against.
CREATE FUNCTION hapex_find_login(p_email text)
    RETURNS TABLE (client_id uuid, user_id uuid, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT u.client_id, u.user_id, u.password_hash FROM public.users u
          WHERE u.email = p_email::public.citext $$;

-- A request with a session cookie: which client and user the session belongs to.
CREATE FUNCTION hapex_find_session(p_session_hash bytea)
    RETURNS TABLE (client_id uuid, user_id uuid, created_at timestamptz,
                   last_seen_at timestamptz, expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT s.client_id, s.user_id, s.created_at, s.last_seen_at, s.expires_at
          FROM public.sessions s WHERE s.session_hash = p_session_hash $$;

-- Housekeeping: delete sessions past their expiry, across clients; returns how many.
CREATE FUNCTION hapex_prune_expired_sessions()
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM public.sessions WHERE expires_at < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

ALTER FUNCTION hapex_find_login(text) OWNER TO hapex_definer;
ALTER FUNCTION hapex_find_session(bytea) OWNER TO hapex_definer;
ALTER FUNCTION hapex_prune_expired_sessions() OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_find_login(text), hapex_find_session(bytea),
    hapex_prune_expired_sessions() FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_find_login(text), hapex_find_session(bytea) TO hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_prune_expired_sessions() TO hapex_agent;

-- Operator overview across clients: counts only, no customer content.
CREATE FUNCTION hapex_admin_overview()
    RETURNS TABLE (clients bigint, connections_active bigint, connections_needs_reauth bigint,
                   runs_last_day bigint, runs_failed_last_day bigint, jobs_waiting bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT (SELECT count(*) FROM public.clients),
           (SELECT count(*) FROM public.connections WHERE status = 'active'),
           (SELECT count(*) FROM public.connections WHERE status = 'needs_reauth'),
           (SELECT count(*) FROM public.runs WHERE queued_at > now() - interval '1 day'),
           (SELECT count(*) FROM public.runs
             WHERE queued_at > now() - interval '1 day' AND status = 'failed'),
           (SELECT count(*) FROM public.procrastinate_jobs WHERE status = 'todo')
    $$;
GRANT SELECT (client_id) ON clients TO hapex_definer;
GRANT SELECT (client_id, status) ON connections TO hapex_definer;
GRANT SELECT (client_id, queued_at, status) ON runs TO hapex_definer;
GRANT SELECT (status) ON procrastinate_jobs TO hapex_definer;
CREATE POLICY definer_admin_count ON clients FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_admin_count ON connections FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_admin_count ON runs FOR SELECT TO hapex_definer USING (true);
ALTER FUNCTION hapex_admin_overview() OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_admin_overview() FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_admin_overview() TO hapex_agent;
