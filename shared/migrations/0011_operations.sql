-- Operating Hapex: connection health counters, notices to clients, the credential access
-- audit, and the operator's reports across clients.
--
-- Cross-client reads go through narrow SECURITY DEFINER functions owned by hapex_definer
-- (as in 0003 and 0007): each returns ids, counts and the client's name at most, never an
-- email address outside the one function that mails a client its own notices, and never
-- customer content. Row-level security stays forced for the service roles.

-- ---- Connection health ------------------------------------------------------------------

-- The health sweep proves refresh tokens still work, and counts a failing provider at most
-- once a day: only after failures on several distinct days is a connection declared broken.
ALTER TABLE connections
    ADD COLUMN refresh_proven_at timestamptz,
    ADD COLUMN health_failures integer NOT NULL DEFAULT 0 CHECK (health_failures >= 0),
    ADD COLUMN health_failure_day date,
    ADD COLUMN health_last_failure_at timestamptz,
    ADD COLUMN health_error_class text CHECK (health_error_class IS NULL OR length(health_error_class) <= 100),
    ADD COLUMN health_recovered_at timestamptz;

-- ---- Notices to clients -----------------------------------------------------------------

-- What a client must know about (and is emailed when SMTP is configured). Metadata only:
-- ids, a provider key and a percentage; the text is written from the kind, never stored.
CREATE TABLE notifications (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    notification_id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('connection_needs_reauth', 'automation_paused', 'budget_nearly_used')),
    -- Identifies the event, so that one event never makes two notices.
    event_key text NOT NULL CHECK (length(event_key) BETWEEN 1 AND 200),
    connection_id uuid,
    automation_id uuid,
    provider text CHECK (provider IS NULL OR provider ~ '^[a-z][a-z0-9_]{1,40}$'),
    budget_percent integer CHECK (budget_percent IS NULL OR budget_percent >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    email_status text NOT NULL DEFAULT 'pending'
        CHECK (email_status IN ('pending', 'sent', 'in_app_only', 'no_recipient', 'failed')),
    email_attempts integer NOT NULL DEFAULT 0 CHECK (email_attempts >= 0),
    emailed_at timestamptz,
    PRIMARY KEY (client_id, notification_id),
    UNIQUE (client_id, kind, event_key)
);
CREATE INDEX notifications_client_created_idx ON notifications (client_id, created_at DESC);
CREATE INDEX notifications_pending_idx ON notifications (created_at) WHERE email_status = 'pending';

-- ---- Credential access audit ------------------------------------------------------------

-- One row each time the vault hands out a credential's plaintext: who (service and
-- host:pid), which connection and purpose, which run and step, why, when. Append-only for
-- the agent. No foreign key to connections: a token refresh holds the connection row locked
-- while its audit row is written from another transaction.
CREATE TABLE credential_access (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    access_id uuid NOT NULL DEFAULT gen_random_uuid(),
    connection_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('refresh_token', 'access_token', 'api_key')),
    reason text NOT NULL
        CHECK (reason IN ('run_step', 'token_refresh', 'revocation', 'health_check', 'other')),
    service text NOT NULL CHECK (service ~ '^[a-z][a-z0-9_-]{0,39}$'),
    accessor text NOT NULL CHECK (length(accessor) BETWEEN 1 AND 200),
    run_id uuid,
    step_index integer CHECK (step_index IS NULL OR step_index >= 0),
    accessed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, access_id)
);
CREATE INDEX credential_access_connection_idx ON credential_access (client_id, connection_id, accessed_at DESC);

-- Row-level security on the new client tables, as on every other (0001).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notifications', 'credential_access'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (client_id = (SELECT nullif(current_setting(''app.client_id'', true), '''')::uuid)) '
            'WITH CHECK (client_id = (SELECT nullif(current_setting(''app.client_id'', true), '''')::uuid))',
            t);
    END LOOP;
END
$$;

-- The agent records audit rows but can neither read, change nor delete them; it reads and
-- updates only the delivery state of notices (the triggers below write them).
GRANT INSERT ON credential_access TO hapex_agent;
GRANT SELECT ON notifications TO hapex_agent;
GRANT UPDATE (email_status, email_attempts, emailed_at) ON notifications TO hapex_agent;
-- The intake shows both to their client, and puts them in the client's data export.
GRANT SELECT ON notifications, credential_access TO hapex_intake;
-- `hapex doctor` checks, as either service role, that every migration is applied.
GRANT SELECT ON hapex_migrations TO hapex_intake, hapex_agent;

-- ---- Notices, written by triggers -------------------------------------------------------
-- Whichever code path makes the change (a run, the health sweep, a disconnect, a vault
-- read that fails), the notice is written in the same transaction, once per event.

GRANT INSERT ON notifications TO hapex_definer;
CREATE POLICY definer_write_notice ON notifications FOR INSERT TO hapex_definer WITH CHECK (true);
GRANT SELECT (monthly_budget_microusd) ON clients TO hapex_definer;
GRANT SELECT (client_id, amount_microusd) ON cost_events TO hapex_definer;

-- A connection became needs_reauth: the client must reconnect it.
CREATE FUNCTION hapex_notice_connection_needs_reauth()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    BEGIN
        INSERT INTO public.notifications (client_id, kind, event_key, connection_id, provider)
        VALUES (NEW.client_id, 'connection_needs_reauth',
                NEW.connection_id::text || '@' || extract(epoch FROM clock_timestamp())::text,
                NEW.connection_id, NEW.provider)
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER connections_notice_needs_reauth AFTER UPDATE OF status ON connections
    FOR EACH ROW WHEN (NEW.status = 'needs_reauth' AND OLD.status IS DISTINCT FROM 'needs_reauth')
    EXECUTE FUNCTION hapex_notice_connection_needs_reauth();

-- An automation was paused by Hapex (clients enable and disable; only Hapex pauses).
CREATE FUNCTION hapex_notice_automation_paused()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    BEGIN
        INSERT INTO public.notifications (client_id, kind, event_key, automation_id)
        VALUES (NEW.client_id, 'automation_paused',
                NEW.automation_id::text || '@' || extract(epoch FROM clock_timestamp())::text,
                NEW.automation_id)
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER automations_notice_paused AFTER UPDATE OF status ON automations
    FOR EACH ROW WHEN (NEW.status = 'paused' AND OLD.status IS DISTINCT FROM 'paused')
    EXECUTE FUNCTION hapex_notice_automation_paused();

-- A cost event took this month's spending (UTC) to 80% of the budget: once per month and
-- budget amount, so raising the budget can warn again.
CREATE FUNCTION hapex_notice_budget_nearly_used()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DECLARE
        budget bigint;
        spent numeric;
        month_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    BEGIN
        SELECT c.monthly_budget_microusd INTO budget FROM public.clients c WHERE c.client_id = NEW.client_id;
        IF budget IS NULL OR budget = 0 THEN
            RETURN NULL;
        END IF;
        SELECT coalesce(sum(e.amount_microusd), 0) INTO spent FROM public.cost_events e
        WHERE e.client_id = NEW.client_id AND e.occurred_at >= month_start;
        IF spent * 100 >= budget * 80 THEN
            INSERT INTO public.notifications (client_id, kind, event_key, budget_percent)
            VALUES (NEW.client_id, 'budget_nearly_used',
                    to_char(month_start AT TIME ZONE 'UTC', 'YYYY-MM') || ':' || budget::text,
                    least(floor(spent * 100 / budget), 1000)::integer)
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER cost_events_notice_budget AFTER INSERT ON cost_events
    FOR EACH ROW WHEN (NEW.amount_microusd > 0)
    EXECUTE FUNCTION hapex_notice_budget_nearly_used();

-- ---- Delivering notices -----------------------------------------------------------------

GRANT SELECT (client_id, notification_id, email_status, created_at) ON notifications TO hapex_definer;
CREATE POLICY definer_pending_notices ON notifications FOR SELECT TO hapex_definer
    USING (email_status = 'pending');

-- Notices not yet emailed, oldest first: ids only.
CREATE FUNCTION hapex_pending_notifications(p_limit integer)
    RETURNS TABLE (client_id uuid, notification_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT n.client_id, n.notification_id FROM public.notifications n
    WHERE n.email_status = 'pending'
    ORDER BY n.created_at
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

-- Where one client's notices go: its users' addresses, and nothing else about them.
CREATE FUNCTION hapex_notice_recipients(p_client_id uuid)
    RETURNS TABLE (email text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT u.email::text FROM public.users u WHERE u.client_id = p_client_id ORDER BY u.created_at $$;
GRANT SELECT (created_at) ON users TO hapex_definer;

-- ---- The health sweep -------------------------------------------------------------------

GRANT SELECT (client_id, connection_id, provider, auth_kind, access_token_expires_at, refresh_proven_at,
              scopes_granted_at, created_at, health_last_failure_at)
    ON connections TO hapex_definer;
GRANT SELECT (connection_id, purpose) ON credentials TO hapex_definer;
GRANT SELECT (steps) ON automations TO hapex_definer;

-- Active OAuth connections with a refresh token that are due a check: their access token
-- expires before an enabled automation that uses their provider is next due ('expiring'),
-- or their refresh token has not been proven since p_unproven_before ('unproven'). One that
-- failed since p_retry_after waits. Ids and times only.
CREATE FUNCTION hapex_connections_due_for_check(
    p_expiring_before timestamptz, p_unproven_before timestamptz, p_retry_after timestamptz,
    p_capabilities text[], p_capability_providers text[], p_limit integer)
    RETURNS TABLE (client_id uuid, connection_id uuid, provider text, access_token_expires_at timestamptz,
                   reason text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT d.client_id, d.connection_id, d.provider, d.access_token_expires_at, d.reason
    FROM (
        SELECT c.client_id, c.connection_id, c.provider, c.access_token_expires_at,
               CASE
                   WHEN c.access_token_expires_at <= p_expiring_before AND EXISTS (
                       SELECT 1 FROM public.automations a
                       CROSS JOIN LATERAL jsonb_array_elements(a.steps) AS s(step)
                       JOIN unnest(p_capabilities, p_capability_providers) AS m(capability, provider)
                         ON m.capability = s.step ->> 'capability'
                       WHERE a.client_id = c.client_id AND a.status = 'enabled'
                         AND a.next_run_at <= p_expiring_before AND m.provider = c.provider)
                   THEN 'expiring'
                   WHEN greatest(c.refresh_proven_at, c.scopes_granted_at, c.created_at) < p_unproven_before
                   THEN 'unproven'
               END AS reason
        FROM public.connections c
        WHERE c.status = 'active' AND c.auth_kind = 'oauth2'
          AND (c.health_last_failure_at IS NULL OR c.health_last_failure_at < p_retry_after)
          AND EXISTS (SELECT 1 FROM public.credentials k
                      WHERE k.client_id = c.client_id AND k.connection_id = c.connection_id
                        AND k.purpose = 'refresh_token')
    ) d
    WHERE d.reason IS NOT NULL
    ORDER BY d.reason, d.access_token_expires_at NULLS LAST, d.connection_id
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

-- ---- The operator's reports -------------------------------------------------------------

GRANT SELECT (name) ON clients TO hapex_definer;
GRANT SELECT (automation_id, error_class, finished_at) ON runs TO hapex_definer;
GRANT SELECT (status_reason, updated_at, health_failures, health_error_class) ON connections TO hapex_definer;
GRANT SELECT (paused_reason, updated_at) ON automations TO hapex_definer;

-- Per client over [p_since, p_until): runs, failed runs and what they cost.
CREATE FUNCTION hapex_admin_client_report(p_since timestamptz, p_until timestamptz)
    RETURNS TABLE (client_id uuid, name text, runs bigint, failed_runs bigint, cost_microusd bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT c.client_id, c.name,
           coalesce(r.runs, 0), coalesce(r.failed_runs, 0), coalesce(e.cost_microusd, 0)
    FROM public.clients c
    LEFT JOIN (SELECT x.client_id, count(*) AS runs, count(*) FILTER (WHERE x.status = 'failed') AS failed_runs
               FROM public.runs x WHERE x.queued_at >= p_since AND x.queued_at < p_until
               GROUP BY x.client_id) r ON r.client_id = c.client_id
    LEFT JOIN (SELECT y.client_id, sum(y.amount_microusd)::bigint AS cost_microusd
               FROM public.cost_events y WHERE y.occurred_at >= p_since AND y.occurred_at < p_until
               GROUP BY y.client_id) e ON e.client_id = c.client_id
    ORDER BY coalesce(e.cost_microusd, 0) DESC, coalesce(r.runs, 0) DESC, c.client_id
    $$;

-- Connections waiting for their client to reconnect them, longest waiting first.
CREATE FUNCTION hapex_admin_reauth_connections()
    RETURNS TABLE (client_id uuid, client_name text, connection_id uuid, provider text, status_reason text,
                   since timestamptz, health_failures integer, health_error_class text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT c.client_id, cl.name, c.connection_id, c.provider, c.status_reason, c.updated_at,
           c.health_failures, c.health_error_class
    FROM public.connections c JOIN public.clients cl ON cl.client_id = c.client_id
    WHERE c.status = 'needs_reauth'
    ORDER BY c.updated_at, c.connection_id
    $$;

-- Automations with failed runs in [p_since, p_until), or paused by Hapex: ids, counts,
-- error classes; never an automation's name or a run's message.
CREATE FUNCTION hapex_admin_failing_automations(p_since timestamptz, p_until timestamptz)
    RETURNS TABLE (client_id uuid, client_name text, automation_id uuid, status text, runs bigint,
                   failed_runs bigint, last_failed_at timestamptz, last_error_class text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT a.client_id, cl.name, a.automation_id, a.status,
           coalesce(r.runs, 0), coalesce(r.failed_runs, 0), r.last_failed_at,
           (SELECT x.error_class FROM public.runs x
            WHERE x.client_id = a.client_id AND x.automation_id = a.automation_id AND x.status = 'failed'
              AND x.queued_at >= p_since AND x.queued_at < p_until
            ORDER BY x.queued_at DESC LIMIT 1)
    FROM public.automations a
    JOIN public.clients cl ON cl.client_id = a.client_id
    LEFT JOIN (SELECT x.client_id, x.automation_id, count(*) AS runs,
                      count(*) FILTER (WHERE x.status = 'failed') AS failed_runs,
                      max(coalesce(x.finished_at, x.queued_at)) FILTER (WHERE x.status = 'failed') AS last_failed_at
               FROM public.runs x WHERE x.queued_at >= p_since AND x.queued_at < p_until
               GROUP BY x.client_id, x.automation_id) r
      ON r.client_id = a.client_id AND r.automation_id = a.automation_id
    WHERE coalesce(r.failed_runs, 0) > 0 OR a.status = 'paused'
    ORDER BY coalesce(r.failed_runs, 0) DESC, r.last_failed_at DESC NULLS LAST, a.automation_id
    $$;

ALTER FUNCTION hapex_notice_connection_needs_reauth() OWNER TO hapex_definer;
ALTER FUNCTION hapex_notice_automation_paused() OWNER TO hapex_definer;
ALTER FUNCTION hapex_notice_budget_nearly_used() OWNER TO hapex_definer;
ALTER FUNCTION hapex_pending_notifications(integer) OWNER TO hapex_definer;
ALTER FUNCTION hapex_notice_recipients(uuid) OWNER TO hapex_definer;
ALTER FUNCTION hapex_connections_due_for_check(timestamptz, timestamptz, timestamptz, text[], text[], integer)
    OWNER TO hapex_definer;
ALTER FUNCTION hapex_admin_client_report(timestamptz, timestamptz) OWNER TO hapex_definer;
ALTER FUNCTION hapex_admin_reauth_connections() OWNER TO hapex_definer;
ALTER FUNCTION hapex_admin_failing_automations(timestamptz, timestamptz) OWNER TO hapex_definer;

REVOKE EXECUTE ON FUNCTION hapex_notice_connection_needs_reauth(), hapex_notice_automation_paused(),
    hapex_notice_budget_nearly_used() FROM PUBLIC, hapex_intake, hapex_agent;
REVOKE EXECUTE ON FUNCTION hapex_pending_notifications(integer), hapex_notice_recipients(uuid),
    hapex_connections_due_for_check(timestamptz, timestamptz, timestamptz, text[], text[], integer),
    hapex_admin_client_report(timestamptz, timestamptz), hapex_admin_reauth_connections(),
    hapex_admin_failing_automations(timestamptz, timestamptz) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_pending_notifications(integer), hapex_notice_recipients(uuid),
    hapex_connections_due_for_check(timestamptz, timestamptz, timestamptz, text[], text[], integer),
    hapex_admin_client_report(timestamptz, timestamptz), hapex_admin_reauth_connections(),
    hapex_admin_failing_automations(timestamptz, timestamptz) TO hapex_agent;
