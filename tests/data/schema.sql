CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;

CREATE TYPE public.procrastinate_job_event_type AS ENUM (
    'deferred',
    'started',
    'deferred_for_retry',
    'failed',
    'succeeded',
    'cancelled',
    'abort_requested',
    'aborted',
    'scheduled',
    'retried'
);

ALTER TYPE public.procrastinate_job_event_type OWNER TO migrator;

CREATE TYPE public.procrastinate_job_status AS ENUM (
    'todo',
    'doing',
    'succeeded',
    'failed',
    'cancelled',
    'aborting',
    'aborted'
);

ALTER TYPE public.procrastinate_job_status OWNER TO migrator;

CREATE TYPE public.procrastinate_job_to_defer_v1 AS (
	queue_name character varying,
	task_name character varying,
	priority integer,
	lock text,
	queueing_lock text,
	args jsonb,
	scheduled_at timestamp with time zone
);

ALTER TYPE public.procrastinate_job_to_defer_v1 OWNER TO migrator;

CREATE FUNCTION public.hapex_account_email_recipient(p_client_id uuid, p_user_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT u.email::text FROM public.users u
          WHERE u.client_id = p_client_id AND u.user_id = p_user_id
            AND p_client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid) $$;

ALTER FUNCTION public.hapex_account_email_recipient(p_client_id uuid, p_user_id uuid) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_admin_client_report(p_since timestamp with time zone, p_until timestamp with time zone) RETURNS TABLE(client_id uuid, name text, runs bigint, failed_runs bigint, cost_microusd bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_admin_client_report(p_since timestamp with time zone, p_until timestamp with time zone) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_admin_failing_automations(p_since timestamp with time zone, p_until timestamp with time zone) RETURNS TABLE(client_id uuid, client_name text, automation_id uuid, status text, runs bigint, failed_runs bigint, last_failed_at timestamp with time zone, last_error_class text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_admin_failing_automations(p_since timestamp with time zone, p_until timestamp with time zone) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_admin_overview() RETURNS TABLE(clients bigint, connections_active bigint, connections_needs_reauth bigint, runs_last_day bigint, runs_failed_last_day bigint, jobs_waiting bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT (SELECT count(*) FROM public.clients),
           (SELECT count(*) FROM public.connections WHERE status = 'active'),
           (SELECT count(*) FROM public.connections WHERE status = 'needs_reauth'),
           (SELECT count(*) FROM public.runs WHERE queued_at > now() - interval '1 day'),
           (SELECT count(*) FROM public.runs
             WHERE queued_at > now() - interval '1 day' AND status = 'failed'),
           (SELECT count(*) FROM public.procrastinate_jobs WHERE status = 'todo')
    $$;

ALTER FUNCTION public.hapex_admin_overview() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_admin_reauth_connections() RETURNS TABLE(client_id uuid, client_name text, connection_id uuid, provider text, status_reason text, since timestamp with time zone, health_failures integer, health_error_class text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT c.client_id, cl.name, c.connection_id, c.provider, c.status_reason, c.updated_at,
           c.health_failures, c.health_error_class
    FROM public.connections c JOIN public.clients cl ON cl.client_id = c.client_id
    WHERE c.status = 'needs_reauth'
    ORDER BY c.updated_at, c.connection_id
    $$;

ALTER FUNCTION public.hapex_admin_reauth_connections() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_change_email_by_link(p_token text) RETURNS TABLE(client_id uuid, user_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    DECLARE
        v_client uuid;
        v_user uuid;
        v_new public.citext;
        v_old public.citext;
    BEGIN
        UPDATE public.account_emails e SET used_at = now()
        WHERE e.token_hash = pg_catalog.sha256(pg_catalog.convert_to(p_token, 'UTF8'))
          AND e.kind = 'verify_new_email' AND e.used_at IS NULL AND e.expires_at > now()
        RETURNING e.client_id, e.user_id, e.to_address INTO v_client, v_user, v_new;
        IF v_client IS NULL THEN
            RETURN;
        END IF;
        SELECT u.email INTO v_old FROM public.users u WHERE u.client_id = v_client AND u.user_id = v_user;
        UPDATE public.users u SET email = v_new, email_verified_at = now()
        WHERE u.client_id = v_client AND u.user_id = v_user;
        INSERT INTO public.account_emails (client_id, user_id, kind, to_address)
        VALUES (v_client, v_user, 'email_changed', v_old);
        client_id := v_client; user_id := v_user;
        RETURN NEXT;
    END
    $$;

ALTER FUNCTION public.hapex_change_email_by_link(p_token text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_connections_due_for_check(p_expiring_before timestamp with time zone, p_unproven_before timestamp with time zone, p_retry_after timestamp with time zone, p_capabilities text[], p_capability_providers text[], p_limit integer) RETURNS TABLE(client_id uuid, connection_id uuid, provider text, access_token_expires_at timestamp with time zone, reason text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_connections_due_for_check(p_expiring_before timestamp with time zone, p_unproven_before timestamp with time zone, p_retry_after timestamp with time zone, p_capabilities text[], p_capability_providers text[], p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_credentials_bump_revision() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    BEGIN
        NEW.revision := OLD.revision + 1;
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$;

ALTER FUNCTION public.hapex_credentials_bump_revision() OWNER TO migrator;

CREATE FUNCTION public.hapex_defer_account_email() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    BEGIN
        PERFORM public.procrastinate_defer_jobs_v1(ARRAY[ROW(
            'maintenance', 'hapex:send_account_email', 0, NULL, NULL,
            jsonb_build_object('client_id', NEW.client_id::text, 'email_id', NEW.email_id::text),
            NULL)::public.procrastinate_job_to_defer_v1]);
        RETURN NULL;
    END
    $$;

ALTER FUNCTION public.hapex_defer_account_email() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_due_polls(p_now timestamp with time zone, p_limit integer) RETURNS TABLE(client_id uuid, automation_id uuid, next_run_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT a.client_id, a.automation_id, a.next_run_at
    FROM public.automations a
    WHERE a.status = 'enabled' AND a.trigger ->> 'kind' = 'poll'
      AND (a.next_run_at IS NULL OR a.next_run_at <= least(p_now, now()))
    ORDER BY a.next_run_at NULLS FIRST
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_due_polls(p_now timestamp with time zone, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_due_schedules(p_now timestamp with time zone, p_limit integer) RETURNS TABLE(client_id uuid, automation_id uuid, next_run_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT a.client_id, a.automation_id, a.next_run_at
    FROM public.automations a
    WHERE a.status = 'enabled' AND a.trigger ->> 'kind' = 'schedule'
      AND (a.next_run_at IS NULL OR a.next_run_at <= least(p_now, now()))
    ORDER BY a.next_run_at NULLS FIRST
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_due_schedules(p_now timestamp with time zone, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_end_session(p_session_hash bytea) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ DELETE FROM public.sessions WHERE session_hash = p_session_hash $$;

ALTER FUNCTION public.hapex_end_session(p_session_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_find_account(p_email text) RETURNS TABLE(client_id uuid, user_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT u.client_id, u.user_id FROM public.users u WHERE u.email = p_email::public.citext $$;

ALTER FUNCTION public.hapex_find_account(p_email text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_find_account_link(p_token_hash bytea) RETURNS TABLE(client_id uuid, email_id uuid, user_id uuid, kind text, live boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT e.client_id, e.email_id, e.user_id, e.kind,
                 e.used_at IS NULL AND e.expires_at > now()
          FROM public.account_emails e
          WHERE e.token_hash = p_token_hash AND p_token_hash IS NOT NULL $$;

ALTER FUNCTION public.hapex_find_account_link(p_token_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_find_login(p_email text) RETURNS TABLE(client_id uuid, user_id uuid, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT u.client_id, u.user_id, u.password_hash FROM public.users u
          WHERE u.email = p_email::public.citext $$;

ALTER FUNCTION public.hapex_find_login(p_email text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_find_session(p_session_hash bytea) RETURNS TABLE(client_id uuid, user_id uuid, created_at timestamp with time zone, last_seen_at timestamp with time zone, expires_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT s.client_id, s.user_id, s.created_at, s.last_seen_at, s.expires_at
          FROM public.sessions s WHERE s.session_hash = p_session_hash $$;

ALTER FUNCTION public.hapex_find_session(p_session_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_find_webhook(p_secret_hash bytea) RETURNS TABLE(client_id uuid, automation_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT a.client_id, a.automation_id
    FROM public.automations a
    WHERE a.webhook_secret_hash = p_secret_hash
      AND a.status = 'enabled' AND a.trigger ->> 'kind' = 'webhook'
    $$;

ALTER FUNCTION public.hapex_find_webhook(p_secret_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_forget_step_outputs() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_forget_step_outputs() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_invite_member(p_session_secret text, p_email text, p_role text) RETURNS TABLE(client_id uuid, user_id uuid)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    INSERT INTO public.users (client_id, email, password_hash, role, email_verified_at)
    SELECT s.client_id, p_email, '!no password yet', p_role, NULL
    FROM public.sessions s
    JOIN public.users o ON o.client_id = s.client_id AND o.user_id = s.user_id AND o.role = 'owner'
    WHERE s.session_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
      AND s.expires_at > now() AND s.created_at > now() - interval '30 days'
    RETURNING users.client_id, users.user_id
    $$;

ALTER FUNCTION public.hapex_invite_member(p_session_secret text, p_email text, p_role text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_issue_passkey_sign_in_challenge(p_challenge_hash bytea) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    DELETE FROM public.passkey_sign_in_challenges WHERE expires_at < now();
    INSERT INTO public.passkey_sign_in_challenges (challenge_hash, expires_at)
    VALUES (p_challenge_hash, now() + interval '5 minutes')
    $$;

ALTER FUNCTION public.hapex_issue_passkey_sign_in_challenge(p_challenge_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_notice_automation_paused() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_notice_automation_paused() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_notice_connection_needs_reauth() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_notice_connection_needs_reauth() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_notice_recipients(p_client_id uuid) RETURNS TABLE(email text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT u.email::text FROM public.users u
    WHERE u.client_id = p_client_id
      AND p_client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid)
    ORDER BY u.created_at
    $$;

ALTER FUNCTION public.hapex_notice_recipients(p_client_id uuid) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_pending_account_emails(p_limit integer) RETURNS TABLE(client_id uuid, email_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT e.client_id, e.email_id FROM public.account_emails e
          WHERE e.status = 'pending' ORDER BY e.created_at LIMIT least(greatest(p_limit, 0), 1000) $$;

ALTER FUNCTION public.hapex_pending_account_emails(p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_pending_notifications(p_limit integer) RETURNS TABLE(client_id uuid, notification_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT n.client_id, n.notification_id FROM public.notifications n
    WHERE n.email_status = 'pending'
    ORDER BY n.created_at
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_pending_notifications(p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_prune_expired_oauth_states() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM public.oauth_states WHERE expires_at <= now();
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

ALTER FUNCTION public.hapex_prune_expired_oauth_states() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_prune_expired_sessions() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM public.sessions WHERE expires_at < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$;

ALTER FUNCTION public.hapex_prune_expired_sessions() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_prune_run_records(p_older_than interval, p_limit integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_prune_run_records(p_older_than interval, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_roll_up_cost_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    DECLARE
        month_start date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    BEGIN
        -- Sorted by key, so that two statements adding to the same rows lock them in one order.
        INSERT INTO public.monthly_costs AS m
            (client_id, month, source, provider, model, events, calls, input_tokens, output_tokens,
             cache_creation_input_tokens, cache_read_input_tokens, amount_microusd)
        SELECT n.client_id, date_trunc('month', n.occurred_at AT TIME ZONE 'UTC')::date, n.source, n.provider,
               n.model, count(*), coalesce(sum(n.calls), 0), coalesce(sum(n.input_tokens), 0),
               coalesce(sum(n.output_tokens), 0), coalesce(sum(n.cache_creation_input_tokens), 0),
               coalesce(sum(n.cache_read_input_tokens), 0), coalesce(sum(n.amount_microusd), 0)
        FROM new_cost_events n
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (client_id, month, source, provider, model) DO UPDATE
        SET events = m.events + EXCLUDED.events,
            calls = m.calls + EXCLUDED.calls,
            input_tokens = m.input_tokens + EXCLUDED.input_tokens,
            output_tokens = m.output_tokens + EXCLUDED.output_tokens,
            cache_creation_input_tokens = m.cache_creation_input_tokens + EXCLUDED.cache_creation_input_tokens,
            cache_read_input_tokens = m.cache_read_input_tokens + EXCLUDED.cache_read_input_tokens,
            amount_microusd = m.amount_microusd + EXCLUDED.amount_microusd;
        -- Migration 0011's notice, now from the rollup rather than a month of cost events read again
        -- for every priced one: this month's spending (UTC) reached 80% of the client's budget; once
        -- per month and budget amount, so that raising the budget can warn again.
        INSERT INTO public.notifications (client_id, kind, event_key, budget_percent)
        SELECT c.client_id, 'budget_nearly_used',
               to_char(month_start, 'YYYY-MM') || ':' || c.monthly_budget_microusd::text,
               least(floor(s.spent * 100 / c.monthly_budget_microusd), 1000)::integer
        FROM (SELECT DISTINCT n.client_id FROM new_cost_events n WHERE n.amount_microusd > 0) p
        JOIN public.clients c ON c.client_id = p.client_id
        CROSS JOIN LATERAL (SELECT coalesce(sum(m.amount_microusd), 0) AS spent FROM public.monthly_costs m
                            WHERE m.client_id = p.client_id AND m.month >= month_start) s
        WHERE c.monthly_budget_microusd > 0 AND s.spent * 100 >= c.monthly_budget_microusd * 80
        ORDER BY c.client_id
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$;

ALTER FUNCTION public.hapex_roll_up_cost_events() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_session_proves_client(p_client_id uuid, p_session_secret text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.sessions s
        WHERE s.session_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
          AND s.client_id = p_client_id
          AND s.expires_at > now()
          AND s.created_at > now() - interval '30 days')
    $$;

ALTER FUNCTION public.hapex_session_proves_client(p_client_id uuid, p_session_secret text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_set_password_by_link(p_token text, p_password_hash text) RETURNS TABLE(client_id uuid, user_id uuid, kind text, sessions_ended integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $_$
    DECLARE
        v_client uuid;
        v_user uuid;
        v_kind text;
        n integer;
    BEGIN
        IF p_password_hash IS NULL OR p_password_hash NOT LIKE '$argon2id$%' THEN
            RAISE EXCEPTION 'a password hash is an argon2id hash' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE public.account_emails e SET used_at = now()
        WHERE e.token_hash = pg_catalog.sha256(pg_catalog.convert_to(p_token, 'UTF8'))
          AND e.kind IN ('reset_password', 'invitation') AND e.used_at IS NULL AND e.expires_at > now()
        RETURNING e.client_id, e.user_id, e.kind INTO v_client, v_user, v_kind;
        IF v_client IS NULL THEN
            RETURN;
        END IF;
        UPDATE public.users u
        SET password_hash = p_password_hash, password_changed_at = now(),
            email_verified_at = coalesce(u.email_verified_at, now())
        WHERE u.client_id = v_client AND u.user_id = v_user;
        DELETE FROM public.sessions s WHERE s.client_id = v_client AND s.user_id = v_user;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE public.account_emails e SET used_at = now()
        WHERE e.client_id = v_client AND e.user_id = v_user AND e.used_at IS NULL
          AND e.kind IN ('reset_password', 'invitation');
        client_id := v_client; user_id := v_user; kind := v_kind; sessions_ended := n;
        RETURN NEXT;
    END
    $_$;

ALTER FUNCTION public.hapex_set_password_by_link(p_token text, p_password_hash text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_sign_up(p_client_id uuid, p_name text, p_email text, p_password_hash text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $_$
    DECLARE
        v_user_id uuid;
    BEGIN
        IF p_password_hash IS NULL OR p_password_hash NOT LIKE '$argon2id$%' THEN
            RAISE EXCEPTION 'a password hash is an argon2id hash' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO public.clients (client_id, name) VALUES (p_client_id, p_name);
        INSERT INTO public.users (client_id, email, password_hash) VALUES (p_client_id, p_email, p_password_hash)
        RETURNING user_id INTO v_user_id;
        RETURN v_user_id;
    END
    $_$;

ALTER FUNCTION public.hapex_sign_up(p_client_id uuid, p_name text, p_email text, p_password_hash text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_spend_passkey_sign_in_challenge(p_challenge_hash bytea) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    WITH spent AS (
        DELETE FROM public.passkey_sign_in_challenges
        WHERE challenge_hash = p_challenge_hash
        RETURNING expires_at
    )
    SELECT coalesce((SELECT expires_at > now() FROM spent), false)
    $$;

ALTER FUNCTION public.hapex_spend_passkey_sign_in_challenge(p_challenge_hash bytea) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    INSERT INTO public.sessions (client_id, session_hash, user_id, expires_at)
    VALUES (p_client_id, p_session_hash, p_user_id,
            now() + least(p_idle, p_absolute, interval '1 day', interval '30 days'))
    $$;

ALTER FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval, p_device text) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    INSERT INTO public.sessions (client_id, session_hash, user_id, expires_at, device)
    VALUES (p_client_id, p_session_hash, p_user_id,
            now() + least(p_idle, p_absolute, interval '1 day', interval '30 days'), left(p_device, 60))
    $$;

ALTER FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval, p_device text) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_touch_session(p_session_hash bytea, p_idle interval, p_absolute interval) RETURNS TABLE(user_id uuid)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_touch_session(p_session_hash bytea, p_idle interval, p_absolute interval) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_unfinished_runs(p_older_than interval) RETURNS TABLE(client_id uuid, run_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT r.client_id, r.run_id FROM public.runs r
    WHERE r.status IN ('queued', 'running') AND r.queued_at < now() - p_older_than
      AND NOT EXISTS (SELECT 1 FROM public.procrastinate_jobs j
                      WHERE j.queueing_lock = 'run:' || r.run_id::text AND j.status IN ('todo', 'doing'))
    $$;

ALTER FUNCTION public.hapex_unfinished_runs(p_older_than interval) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_count_encryptions(p_key_id text, p_count integer) RETURNS bigint
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
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

ALTER FUNCTION public.hapex_vault_count_encryptions(p_key_id text, p_count integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_key_census() RETURNS TABLE(key_id text, credentials bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$ SELECT c.key_id, count(*) FROM public.credentials c GROUP BY c.key_id ORDER BY 1 $$;

ALTER FUNCTION public.hapex_vault_key_census() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_output_key_census() RETURNS TABLE(key_id text, outputs bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT s.output_key_id, count(*) FROM public.run_steps s
    WHERE s.output_key_id IS NOT NULL GROUP BY s.output_key_id ORDER BY 1
    $$;

ALTER FUNCTION public.hapex_vault_output_key_census() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_output_rotation_batch(p_primary_key_id text, p_after_run uuid, p_after_step integer, p_limit integer) RETURNS TABLE(client_id uuid, run_id uuid, step_index integer, key_id text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT s.client_id, s.run_id, s.step_index, s.output_key_id
    FROM public.run_steps s
    WHERE s.output_key_id IS NOT NULL AND s.output_key_id <> p_primary_key_id
      AND (p_after_run IS NULL OR (s.run_id, s.step_index) > (p_after_run, coalesce(p_after_step, -1)))
    ORDER BY s.run_id, s.step_index
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_vault_output_rotation_batch(p_primary_key_id text, p_after_run uuid, p_after_step integer, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_rotation_batch(p_primary_key_id text, p_after uuid, p_limit integer) RETURNS TABLE(client_id uuid, credential_id uuid, key_id text, revision integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT c.client_id, c.credential_id, c.key_id, c.revision
    FROM public.credentials c
    WHERE c.key_id <> p_primary_key_id
      AND (p_after IS NULL OR c.credential_id > p_after)
    ORDER BY c.credential_id
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_vault_rotation_batch(p_primary_key_id text, p_after uuid, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_totp_key_census() RETURNS TABLE(key_id text, secrets bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT t.key_id, count(*) FROM public.user_totp t GROUP BY t.key_id ORDER BY 1
    $$;

ALTER FUNCTION public.hapex_vault_totp_key_census() OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_vault_totp_rotation_batch(p_primary_key_id text, p_after_client uuid, p_after_user uuid, p_limit integer) RETURNS TABLE(client_id uuid, user_id uuid, key_id text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT t.client_id, t.user_id, t.key_id
    FROM public.user_totp t
    WHERE t.key_id <> p_primary_key_id
      AND (p_after_client IS NULL OR (t.client_id, t.user_id) > (p_after_client, p_after_user))
    ORDER BY t.client_id, t.user_id
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION public.hapex_vault_totp_rotation_batch(p_primary_key_id text, p_after_client uuid, p_after_user uuid, p_limit integer) OWNER TO hapex_definer;

CREATE FUNCTION public.hapex_webhook_proves_client(p_client_id uuid, p_automation_id uuid, p_webhook_secret text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.automations a
        WHERE a.webhook_secret_hash = pg_catalog.sha256(pg_catalog.convert_to(p_webhook_secret, 'UTF8'))
          AND a.client_id = p_client_id
          AND a.automation_id = p_automation_id
          AND a.status = 'enabled' AND a.trigger ->> 'kind' = 'webhook')
    $$;

ALTER FUNCTION public.hapex_webhook_proves_client(p_client_id uuid, p_automation_id uuid, p_webhook_secret text) OWNER TO hapex_definer;

CREATE FUNCTION public.procrastinate_cancel_job_v1(job_id bigint, abort boolean, delete_job boolean) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    _job_id bigint;
BEGIN
    IF delete_job THEN
        DELETE FROM procrastinate_jobs
        WHERE id = job_id AND status = 'todo'
        RETURNING id INTO _job_id;
    END IF;
    IF _job_id IS NULL THEN
        IF abort THEN
            UPDATE procrastinate_jobs
            SET abort_requested = true,
                status = CASE status
                    WHEN 'todo' THEN 'cancelled'::procrastinate_job_status ELSE status
                END
            WHERE id = job_id AND status IN ('todo', 'doing')
            RETURNING id INTO _job_id;
        ELSE
            UPDATE procrastinate_jobs
            SET status = 'cancelled'::procrastinate_job_status
            WHERE id = job_id AND status = 'todo'
            RETURNING id INTO _job_id;
        END IF;
    END IF;
    RETURN _job_id;
END;
$$;

ALTER FUNCTION public.procrastinate_cancel_job_v1(job_id bigint, abort boolean, delete_job boolean) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_defer_jobs_v1(jobs public.procrastinate_job_to_defer_v1[]) RETURNS bigint[]
    LANGUAGE plpgsql
    AS $$
DECLARE
    job_ids bigint[];
BEGIN
    WITH inserted_jobs AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
        SELECT (job).queue_name,
               (job).task_name,
               (job).priority,
               (job).lock,
               (job).queueing_lock,
               (job).args,
               (job).scheduled_at
        FROM unnest(jobs) AS job
        RETURNING id
    )
    SELECT array_agg(id) FROM inserted_jobs INTO job_ids;

    RETURN job_ids;
END;
$$;

ALTER FUNCTION public.procrastinate_defer_jobs_v1(jobs public.procrastinate_job_to_defer_v1[]) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_defer_periodic_job_v2(_queue_name character varying, _lock character varying, _queueing_lock character varying, _task_name character varying, _priority integer, _periodic_id character varying, _defer_timestamp bigint, _args jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
	_job_id bigint;
	_defer_id bigint;
BEGIN
    INSERT
        INTO procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp)
        VALUES (_task_name, _periodic_id, _defer_timestamp)
        ON CONFLICT DO NOTHING
        RETURNING id into _defer_id;

    IF _defer_id IS NULL THEN
        RETURN NULL;
    END IF;

    UPDATE procrastinate_periodic_defers
        SET job_id = (
            SELECT COALESCE((
                SELECT unnest(procrastinate_defer_jobs_v1(
                    ARRAY[
                        ROW(
                            _queue_name,
                            _task_name,
                            _priority,
                            _lock,
                            _queueing_lock,
                            _args,
                            NULL::timestamptz
                        )
                    ]::procrastinate_job_to_defer_v1[]
                ))
            ), NULL)
        )
        WHERE id = _defer_id
        RETURNING job_id INTO _job_id;

    DELETE
        FROM procrastinate_periodic_defers
        USING (
            SELECT id
            FROM procrastinate_periodic_defers
            WHERE procrastinate_periodic_defers.task_name = _task_name
            AND procrastinate_periodic_defers.periodic_id = _periodic_id
            AND procrastinate_periodic_defers.defer_timestamp < _defer_timestamp
            ORDER BY id
            FOR UPDATE
        ) to_delete
        WHERE procrastinate_periodic_defers.id = to_delete.id;

    RETURN _job_id;
END;
$$;

ALTER FUNCTION public.procrastinate_defer_periodic_job_v2(_queue_name character varying, _lock character varying, _queueing_lock character varying, _task_name character varying, _priority integer, _periodic_id character varying, _defer_timestamp bigint, _args jsonb) OWNER TO migrator;

CREATE TABLE public.procrastinate_jobs (
    id bigint NOT NULL,
    queue_name character varying(128) NOT NULL,
    task_name character varying(128) NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    lock text,
    queueing_lock text,
    args jsonb DEFAULT '{}'::jsonb NOT NULL,
    status public.procrastinate_job_status DEFAULT 'todo'::public.procrastinate_job_status NOT NULL,
    scheduled_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    abort_requested boolean DEFAULT false NOT NULL,
    worker_id bigint,
    CONSTRAINT check_not_todo_abort_requested CHECK ((NOT ((status = 'todo'::public.procrastinate_job_status) AND (abort_requested = true))))
);

ALTER TABLE public.procrastinate_jobs OWNER TO migrator;

CREATE FUNCTION public.procrastinate_fetch_job_v2(target_queue_names character varying[], p_worker_id bigint) RETURNS public.procrastinate_jobs
    LANGUAGE plpgsql
    AS $$
DECLARE
	found_jobs procrastinate_jobs;
BEGIN
    WITH candidate AS (
        SELECT jobs.*
            FROM procrastinate_jobs AS jobs
            WHERE
                -- reject the job if its lock has earlier or higher priority jobs
                NOT EXISTS (
                    SELECT 1
                        FROM procrastinate_jobs AS other_jobs
                        WHERE
                            jobs.lock IS NOT NULL
                            AND other_jobs.lock = jobs.lock
                            AND (
                                -- job with same lock is already running
                                other_jobs.status = 'doing'
                                OR
                                -- job with same lock is waiting and has higher priority (or same priority but was queued first)
                                (
                                    other_jobs.status = 'todo'
                                    AND (
                                        other_jobs.priority > jobs.priority
                                        OR (
                                        other_jobs.priority = jobs.priority
                                        AND other_jobs.id < jobs.id
                                        )
                                    )
                                )
                            )
                )
                AND jobs.status = 'todo'
                AND (target_queue_names IS NULL OR jobs.queue_name = ANY( target_queue_names ))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
            ORDER BY jobs.priority DESC, jobs.id ASC LIMIT 1
            FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs
        SET status = 'doing', worker_id = p_worker_id
        FROM candidate
        WHERE procrastinate_jobs.id = candidate.id
        RETURNING procrastinate_jobs.* INTO found_jobs;

 RETURN found_jobs;
END;
$$;

ALTER FUNCTION public.procrastinate_fetch_job_v2(target_queue_names character varying[], p_worker_id bigint) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_finish_job_v1(job_id bigint, end_status public.procrastinate_job_status, delete_job boolean) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    _job_id bigint;
BEGIN
    IF end_status NOT IN ('succeeded', 'failed', 'aborted') THEN
        RAISE 'End status should be either "succeeded", "failed" or "aborted" (job id: %)', job_id;
    END IF;
    IF delete_job THEN
        DELETE FROM procrastinate_jobs
        WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = end_status,
            abort_requested = false,
            attempts = CASE status
                WHEN 'doing' THEN attempts + 1 ELSE attempts
            END
        WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO _job_id;
    END IF;
    IF _job_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" or "todo" status (job id: %)', job_id;
    END IF;
END;
$$;

ALTER FUNCTION public.procrastinate_finish_job_v1(job_id bigint, end_status public.procrastinate_job_status, delete_job boolean) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_notify_queue_abort_job_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    payload TEXT;
BEGIN
    SELECT json_build_object('type', 'abort_job_requested', 'job_id', NEW.id)::text INTO payload;
	PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
	PERFORM pg_notify('procrastinate_any_queue_v1', payload);
	RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_notify_queue_abort_job_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_notify_queue_job_inserted_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    payload TEXT;
BEGIN
    SELECT json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text INTO payload;
	PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
	PERFORM pg_notify('procrastinate_any_queue_v1', payload);
	RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_notify_queue_job_inserted_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision) RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN QUERY
    DELETE FROM procrastinate_workers
    WHERE last_heartbeat < NOW() - (seconds_since_heartbeat || 'SECOND')::INTERVAL
    RETURNING procrastinate_workers.id;
END;
$$;

ALTER FUNCTION public.procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_register_worker_v1() RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN QUERY
    INSERT INTO procrastinate_workers DEFAULT VALUES
    RETURNING procrastinate_workers.id;
END;
$$;

ALTER FUNCTION public.procrastinate_register_worker_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_retry_job_v1(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    _job_id bigint;
    _abort_requested boolean;
BEGIN
    SELECT abort_requested FROM procrastinate_jobs
    WHERE id = job_id AND status = 'doing'
    FOR UPDATE
    INTO _abort_requested;
    IF _abort_requested THEN
        UPDATE procrastinate_jobs
        SET status = 'failed'::procrastinate_job_status
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = 'todo'::procrastinate_job_status,
            attempts = attempts + 1,
            scheduled_at = retry_at,
            priority = COALESCE(new_priority, priority),
            queue_name = COALESCE(new_queue_name, queue_name),
            lock = COALESCE(new_lock, lock)
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    END IF;

    IF _job_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" status (job id: %)', job_id;
    END IF;
END;
$$;

ALTER FUNCTION public.procrastinate_retry_job_v1(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_retry_job_v2(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    _job_id bigint;
    _abort_requested boolean;
    _current_status procrastinate_job_status;
BEGIN
    SELECT status, abort_requested FROM procrastinate_jobs
    WHERE id = job_id AND status IN ('doing', 'failed')
    FOR UPDATE
    INTO _current_status, _abort_requested;
    IF _current_status = 'doing' AND _abort_requested THEN
        UPDATE procrastinate_jobs
        SET status = 'failed'::procrastinate_job_status
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = 'todo'::procrastinate_job_status,
            attempts = attempts + 1,
            scheduled_at = retry_at,
            priority = COALESCE(new_priority, priority),
            queue_name = COALESCE(new_queue_name, queue_name),
            lock = COALESCE(new_lock, lock)
        WHERE id = job_id AND status IN ('doing', 'failed')
        RETURNING id INTO _job_id;
    END IF;

    IF _job_id IS NULL THEN
        RAISE 'Job was not found or has an invalid status to retry (job id: %)', job_id;
    END IF;

END;
$$;

ALTER FUNCTION public.procrastinate_retry_job_v2(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_trigger_abort_requested_events_procedure_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type)
        VALUES (NEW.id, 'abort_requested'::procrastinate_job_event_type);
    RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_trigger_abort_requested_events_procedure_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_trigger_function_scheduled_events_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type, at)
        VALUES (NEW.id, 'scheduled'::procrastinate_job_event_type, NEW.scheduled_at);

	RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_trigger_function_scheduled_events_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_trigger_function_status_events_insert_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type)
        VALUES (NEW.id, 'deferred'::procrastinate_job_event_type);
	RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_trigger_function_status_events_insert_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_trigger_function_status_events_update_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    WITH t AS (
        SELECT CASE
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND NEW.status = 'doing'::procrastinate_job_status
                THEN 'started'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'deferred_for_retry'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'failed'::procrastinate_job_status
                THEN 'failed'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'succeeded'::procrastinate_job_status
                THEN 'succeeded'::procrastinate_job_event_type
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND (
                    NEW.status = 'cancelled'::procrastinate_job_status
                    OR NEW.status = 'failed'::procrastinate_job_status
                    OR NEW.status = 'succeeded'::procrastinate_job_status
                )
                THEN 'cancelled'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'aborted'::procrastinate_job_status
                THEN 'aborted'::procrastinate_job_event_type
            WHEN OLD.status = 'failed'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'retried'::procrastinate_job_event_type
            ELSE NULL
        END as event_type
    )
    INSERT INTO procrastinate_events(job_id, type)
        SELECT NEW.id, t.event_type
        FROM t
        WHERE t.event_type IS NOT NULL;
	RETURN NEW;
END;
$$;

ALTER FUNCTION public.procrastinate_trigger_function_status_events_update_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_unlink_periodic_defers_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE procrastinate_periodic_defers
    SET job_id = NULL
    WHERE job_id = OLD.id;
    RETURN OLD;
END;
$$;

ALTER FUNCTION public.procrastinate_unlink_periodic_defers_v1() OWNER TO migrator;

CREATE FUNCTION public.procrastinate_unregister_worker_v1(worker_id bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM procrastinate_workers
    WHERE id = worker_id;
END;
$$;

ALTER FUNCTION public.procrastinate_unregister_worker_v1(worker_id bigint) OWNER TO migrator;

CREATE FUNCTION public.procrastinate_update_heartbeat_v1(worker_id bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE procrastinate_workers
    SET last_heartbeat = NOW()
    WHERE id = worker_id;
END;
$$;

ALTER FUNCTION public.procrastinate_update_heartbeat_v1(worker_id bigint) OWNER TO migrator;

CREATE TABLE public.account_emails (
    client_id uuid NOT NULL,
    email_id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    to_address public.citext,
    link_base text,
    token_hash bytea,
    link_ttl interval,
    expires_at timestamp with time zone,
    used_at timestamp with time zone,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    CONSTRAINT account_emails_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT account_emails_check CHECK (((link_base IS NULL) = (link_ttl IS NULL))),
    CONSTRAINT account_emails_kind_check CHECK ((kind = ANY (ARRAY['verify_email'::text, 'already_registered'::text, 'reset_password'::text, 'password_changed'::text, 'second_factor_on'::text, 'second_factor_off'::text, 'invitation'::text, 'invitation_taken'::text, 'verify_new_email'::text, 'email_changed'::text, 'passkey_added'::text, 'passkey_removed'::text]))),
    CONSTRAINT account_emails_link_base_check CHECK (((link_base IS NULL) OR ((link_base ~~ 'http%'::text) AND (length(link_base) <= 300)))),
    CONSTRAINT account_emails_link_ttl_check CHECK (((link_ttl IS NULL) OR ((link_ttl >= '00:01:00'::interval) AND (link_ttl <= '7 days'::interval)))),
    CONSTRAINT account_emails_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'sent'::text, 'failed'::text, 'no_smtp'::text]))),
    CONSTRAINT account_emails_to_address_check CHECK (((to_address IS NULL) OR ((length((to_address)::text) >= 3) AND (length((to_address)::text) <= 254)))),
    CONSTRAINT account_emails_to_address_kinds CHECK (((to_address IS NULL) OR (kind = ANY (ARRAY['verify_new_email'::text, 'email_changed'::text])))),
    CONSTRAINT account_emails_token_hash_check CHECK (((token_hash IS NULL) OR (length(token_hash) = 32)))
);

ALTER TABLE ONLY public.account_emails FORCE ROW LEVEL SECURITY;

ALTER TABLE public.account_emails OWNER TO migrator;

CREATE TABLE public.automation_versions (
    client_id uuid NOT NULL,
    automation_id uuid NOT NULL,
    version integer NOT NULL,
    trigger jsonb NOT NULL,
    steps jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.automation_versions FORCE ROW LEVEL SECURITY;

ALTER TABLE public.automation_versions OWNER TO migrator;

CREATE TABLE public.automations (
    client_id uuid NOT NULL,
    automation_id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    status text DEFAULT 'draft'::text NOT NULL,
    paused_reason text,
    version integer DEFAULT 1 NOT NULL,
    trigger jsonb DEFAULT '{"kind": "manual"}'::jsonb NOT NULL,
    steps jsonb DEFAULT '[]'::jsonb NOT NULL,
    store_outputs boolean DEFAULT false NOT NULL,
    next_run_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    webhook_secret_hash bytea,
    CONSTRAINT automations_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT automations_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'enabled'::text, 'disabled'::text, 'paused'::text, 'archived'::text, 'deleted'::text]))),
    CONSTRAINT automations_version_check CHECK ((version >= 1)),
    CONSTRAINT automations_webhook_secret_hash_check CHECK (((webhook_secret_hash IS NULL) OR (length(webhook_secret_hash) = 32)))
);

ALTER TABLE ONLY public.automations FORCE ROW LEVEL SECURITY;

ALTER TABLE public.automations OWNER TO migrator;

CREATE TABLE public.chat_drafts (
    client_id uuid NOT NULL,
    draft_id uuid DEFAULT gen_random_uuid() NOT NULL,
    proposal jsonb,
    proposal_summary text,
    proposal_revision integer DEFAULT 0 NOT NULL,
    prompt_version text,
    automation_id uuid,
    approved_revision integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT chat_drafts_check CHECK (((proposal IS NULL) = (proposal_revision = 0))),
    CONSTRAINT chat_drafts_proposal_revision_check CHECK ((proposal_revision >= 0))
);

ALTER TABLE ONLY public.chat_drafts FORCE ROW LEVEL SECURITY;

ALTER TABLE public.chat_drafts OWNER TO migrator;

CREATE TABLE public.chat_messages (
    client_id uuid NOT NULL,
    message_id uuid DEFAULT gen_random_uuid() NOT NULL,
    draft_id uuid NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT chat_messages_role_check CHECK ((role = ANY (ARRAY['client'::text, 'assistant'::text])))
);

ALTER TABLE ONLY public.chat_messages FORCE ROW LEVEL SECURITY;

ALTER TABLE public.chat_messages OWNER TO migrator;

CREATE TABLE public.clients (
    client_id uuid NOT NULL,
    name text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    monthly_budget_microusd bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    require_second_factor boolean DEFAULT false NOT NULL,
    CONSTRAINT clients_monthly_budget_microusd_check CHECK ((monthly_budget_microusd >= 0)),
    CONSTRAINT clients_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT clients_status_check CHECK ((status = ANY (ARRAY['active'::text, 'suspended'::text])))
);

ALTER TABLE ONLY public.clients FORCE ROW LEVEL SECURITY;

ALTER TABLE public.clients OWNER TO migrator;

CREATE TABLE public.connections (
    client_id uuid NOT NULL,
    connection_id uuid DEFAULT gen_random_uuid() NOT NULL,
    provider text NOT NULL,
    auth_kind text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    status_reason text,
    scopes_granted text[] DEFAULT '{}'::text[] NOT NULL,
    scopes_granted_at timestamp with time zone,
    account_label text,
    secret_hint text,
    access_token_expires_at timestamp with time zone,
    last_used_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    refresh_proven_at timestamp with time zone,
    health_failures integer DEFAULT 0 NOT NULL,
    health_failure_day date,
    health_last_failure_at timestamp with time zone,
    health_error_class text,
    health_recovered_at timestamp with time zone,
    CONSTRAINT connections_auth_kind_check CHECK ((auth_kind = ANY (ARRAY['oauth2'::text, 'api_key'::text]))),
    CONSTRAINT connections_health_error_class_check CHECK (((health_error_class IS NULL) OR (length(health_error_class) <= 100))),
    CONSTRAINT connections_health_failures_check CHECK ((health_failures >= 0)),
    CONSTRAINT connections_provider_check CHECK ((provider ~ '^[a-z][a-z0-9_]{1,40}$'::text)),
    CONSTRAINT connections_secret_hint_check CHECK (((secret_hint IS NULL) OR (length(secret_hint) <= 4))),
    CONSTRAINT connections_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'active'::text, 'needs_reauth'::text, 'revoked'::text])))
);

ALTER TABLE ONLY public.connections FORCE ROW LEVEL SECURITY;

ALTER TABLE public.connections OWNER TO migrator;

CREATE TABLE public.cost_events (
    client_id uuid NOT NULL,
    cost_event_id uuid DEFAULT gen_random_uuid() NOT NULL,
    run_id uuid,
    step_index integer,
    source text NOT NULL,
    provider text NOT NULL,
    model text,
    input_tokens integer,
    output_tokens integer,
    price_version text,
    amount_microusd bigint DEFAULT 0 NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    calls integer DEFAULT 1 NOT NULL,
    cache_creation_input_tokens integer,
    cache_read_input_tokens integer,
    CONSTRAINT cost_events_amount_microusd_check CHECK ((amount_microusd >= 0)),
    CONSTRAINT cost_events_cache_creation_input_tokens_check CHECK ((cache_creation_input_tokens >= 0)),
    CONSTRAINT cost_events_cache_read_input_tokens_check CHECK ((cache_read_input_tokens >= 0)),
    CONSTRAINT cost_events_calls_check CHECK ((calls >= 0)),
    CONSTRAINT cost_events_input_tokens_check CHECK ((input_tokens >= 0)),
    CONSTRAINT cost_events_output_tokens_check CHECK ((output_tokens >= 0)),
    CONSTRAINT cost_events_source_check CHECK ((source = ANY (ARRAY['llm'::text, 'provider_call'::text, 'chat'::text])))
);

ALTER TABLE ONLY public.cost_events FORCE ROW LEVEL SECURITY;

ALTER TABLE public.cost_events OWNER TO migrator;

CREATE TABLE public.credential_access (
    client_id uuid NOT NULL,
    access_id uuid DEFAULT gen_random_uuid() NOT NULL,
    connection_id uuid NOT NULL,
    purpose text NOT NULL,
    reason text NOT NULL,
    service text NOT NULL,
    accessor text NOT NULL,
    run_id uuid,
    step_index integer,
    accessed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credential_access_accessor_check CHECK (((length(accessor) >= 1) AND (length(accessor) <= 200))),
    CONSTRAINT credential_access_purpose_check CHECK ((purpose = ANY (ARRAY['refresh_token'::text, 'access_token'::text, 'api_key'::text]))),
    CONSTRAINT credential_access_reason_check CHECK ((reason = ANY (ARRAY['run_step'::text, 'token_refresh'::text, 'revocation'::text, 'health_check'::text, 'other'::text, 'step_test'::text, 'poll'::text, 'trigger_item'::text]))),
    CONSTRAINT credential_access_service_check CHECK ((service ~ '^[a-z][a-z0-9_-]{0,39}$'::text)),
    CONSTRAINT credential_access_step_index_check CHECK (((step_index IS NULL) OR (step_index >= 0)))
);

ALTER TABLE ONLY public.credential_access FORCE ROW LEVEL SECURITY;

ALTER TABLE public.credential_access OWNER TO migrator;

CREATE TABLE public.credentials (
    client_id uuid NOT NULL,
    credential_id uuid DEFAULT gen_random_uuid() NOT NULL,
    connection_id uuid NOT NULL,
    purpose text NOT NULL,
    key_id text NOT NULL,
    nonce bytea NOT NULL,
    ciphertext bytea NOT NULL,
    revision integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credentials_nonce_check CHECK ((length(nonce) = 12)),
    CONSTRAINT credentials_purpose_check CHECK ((purpose = ANY (ARRAY['refresh_token'::text, 'access_token'::text, 'api_key'::text])))
);

ALTER TABLE ONLY public.credentials FORCE ROW LEVEL SECURITY;

ALTER TABLE public.credentials OWNER TO migrator;

CREATE TABLE public.hapex_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.hapex_migrations OWNER TO migrator;

CREATE TABLE public.login_throttle (
    bucket bytea NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    window_started_at timestamp with time zone DEFAULT now() NOT NULL,
    locked_until timestamp with time zone,
    CONSTRAINT login_throttle_bucket_check CHECK ((length(bucket) = 32))
);

ALTER TABLE public.login_throttle OWNER TO migrator;

CREATE TABLE public.monthly_costs (
    client_id uuid NOT NULL,
    month date NOT NULL,
    source text NOT NULL,
    provider text NOT NULL,
    model text,
    events bigint NOT NULL,
    calls bigint NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cache_creation_input_tokens bigint NOT NULL,
    cache_read_input_tokens bigint NOT NULL,
    amount_microusd bigint NOT NULL,
    CONSTRAINT monthly_costs_amount_microusd_check CHECK ((amount_microusd >= 0)),
    CONSTRAINT monthly_costs_cache_creation_input_tokens_check CHECK ((cache_creation_input_tokens >= 0)),
    CONSTRAINT monthly_costs_cache_read_input_tokens_check CHECK ((cache_read_input_tokens >= 0)),
    CONSTRAINT monthly_costs_calls_check CHECK ((calls >= 0)),
    CONSTRAINT monthly_costs_events_check CHECK ((events >= 0)),
    CONSTRAINT monthly_costs_input_tokens_check CHECK ((input_tokens >= 0)),
    CONSTRAINT monthly_costs_month_check CHECK ((EXTRACT(day FROM month) = (1)::numeric)),
    CONSTRAINT monthly_costs_output_tokens_check CHECK ((output_tokens >= 0))
);

ALTER TABLE ONLY public.monthly_costs FORCE ROW LEVEL SECURITY;

ALTER TABLE public.monthly_costs OWNER TO migrator;

CREATE TABLE public.notifications (
    client_id uuid NOT NULL,
    notification_id uuid DEFAULT gen_random_uuid() NOT NULL,
    kind text NOT NULL,
    event_key text NOT NULL,
    connection_id uuid,
    automation_id uuid,
    provider text,
    budget_percent integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    email_status text DEFAULT 'pending'::text NOT NULL,
    email_attempts integer DEFAULT 0 NOT NULL,
    emailed_at timestamp with time zone,
    CONSTRAINT notifications_budget_percent_check CHECK (((budget_percent IS NULL) OR (budget_percent >= 0))),
    CONSTRAINT notifications_email_attempts_check CHECK ((email_attempts >= 0)),
    CONSTRAINT notifications_email_status_check CHECK ((email_status = ANY (ARRAY['pending'::text, 'sent'::text, 'in_app_only'::text, 'no_recipient'::text, 'failed'::text]))),
    CONSTRAINT notifications_event_key_check CHECK (((length(event_key) >= 1) AND (length(event_key) <= 200))),
    CONSTRAINT notifications_kind_check CHECK ((kind = ANY (ARRAY['connection_needs_reauth'::text, 'automation_paused'::text, 'budget_nearly_used'::text]))),
    CONSTRAINT notifications_provider_check CHECK (((provider IS NULL) OR (provider ~ '^[a-z][a-z0-9_]{1,40}$'::text)))
);

ALTER TABLE ONLY public.notifications FORCE ROW LEVEL SECURITY;

ALTER TABLE public.notifications OWNER TO migrator;

CREATE TABLE public.oauth_states (
    client_id uuid NOT NULL,
    state_hash bytea NOT NULL,
    session_hash bytea NOT NULL,
    provider text NOT NULL,
    connection_id uuid,
    requested_scopes text[] NOT NULL,
    redirect_uri text NOT NULL,
    issuer text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT oauth_states_state_hash_check CHECK ((length(state_hash) = 32))
);

ALTER TABLE ONLY public.oauth_states FORCE ROW LEVEL SECURITY;

ALTER TABLE public.oauth_states OWNER TO migrator;

CREATE TABLE public.passkey_challenges (
    client_id uuid NOT NULL,
    challenge_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    purpose text NOT NULL,
    expires_at timestamp with time zone DEFAULT (now() + '00:05:00'::interval) NOT NULL,
    CONSTRAINT passkey_challenges_challenge_hash_check CHECK ((length(challenge_hash) = 32)),
    CONSTRAINT passkey_challenges_purpose_check CHECK ((purpose = ANY (ARRAY['register'::text, 'second_factor'::text])))
);

ALTER TABLE ONLY public.passkey_challenges FORCE ROW LEVEL SECURITY;

ALTER TABLE public.passkey_challenges OWNER TO migrator;

CREATE TABLE public.passkey_sign_in_challenges (
    challenge_hash bytea NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT passkey_sign_in_challenges_challenge_hash_check CHECK ((length(challenge_hash) = 32))
);

ALTER TABLE ONLY public.passkey_sign_in_challenges FORCE ROW LEVEL SECURITY;

ALTER TABLE public.passkey_sign_in_challenges OWNER TO migrator;

CREATE TABLE public.poll_seen (
    client_id uuid NOT NULL,
    automation_id uuid NOT NULL,
    item_key text NOT NULL,
    "position" bigint NOT NULL,
    seen_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    run_id uuid,
    CONSTRAINT poll_seen_item_key_check CHECK (((length(item_key) >= 1) AND (length(item_key) <= 300)))
);

ALTER TABLE ONLY public.poll_seen FORCE ROW LEVEL SECURITY;

ALTER TABLE public.poll_seen OWNER TO migrator;

ALTER TABLE public.poll_seen ALTER COLUMN "position" ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.poll_seen_position_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.poll_states (
    client_id uuid NOT NULL,
    automation_id uuid NOT NULL,
    automation_version integer NOT NULL,
    cursor jsonb DEFAULT '{}'::jsonb NOT NULL,
    primed_at timestamp with time zone DEFAULT now() NOT NULL,
    polled_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.poll_states FORCE ROW LEVEL SECURITY;

ALTER TABLE public.poll_states OWNER TO migrator;

CREATE TABLE public.procrastinate_events (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    type public.procrastinate_job_event_type,
    at timestamp with time zone DEFAULT now()
);

ALTER TABLE public.procrastinate_events OWNER TO migrator;

CREATE SEQUENCE public.procrastinate_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.procrastinate_events_id_seq OWNER TO migrator;

ALTER SEQUENCE public.procrastinate_events_id_seq OWNED BY public.procrastinate_events.id;

CREATE SEQUENCE public.procrastinate_jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.procrastinate_jobs_id_seq OWNER TO migrator;

ALTER SEQUENCE public.procrastinate_jobs_id_seq OWNED BY public.procrastinate_jobs.id;

CREATE TABLE public.procrastinate_periodic_defers (
    id bigint NOT NULL,
    task_name character varying(128) NOT NULL,
    defer_timestamp bigint,
    job_id bigint,
    periodic_id character varying(128) DEFAULT ''::character varying NOT NULL
);

ALTER TABLE public.procrastinate_periodic_defers OWNER TO migrator;

CREATE SEQUENCE public.procrastinate_periodic_defers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.procrastinate_periodic_defers_id_seq OWNER TO migrator;

ALTER SEQUENCE public.procrastinate_periodic_defers_id_seq OWNED BY public.procrastinate_periodic_defers.id;

CREATE TABLE public.procrastinate_workers (
    id bigint NOT NULL,
    last_heartbeat timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.procrastinate_workers OWNER TO migrator;

ALTER TABLE public.procrastinate_workers ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.procrastinate_workers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.recovery_codes (
    client_id uuid NOT NULL,
    user_id uuid NOT NULL,
    code_hash bytea NOT NULL,
    used_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT recovery_codes_code_hash_check CHECK ((length(code_hash) = 32))
);

ALTER TABLE ONLY public.recovery_codes FORCE ROW LEVEL SECURITY;

ALTER TABLE public.recovery_codes OWNER TO migrator;

CREATE TABLE public.run_steps (
    client_id uuid NOT NULL,
    run_id uuid NOT NULL,
    step_index integer NOT NULL,
    capability text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempt_count integer DEFAULT 0 NOT NULL,
    idempotency_key text,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    duration_ms integer,
    error_class text,
    safe_message text,
    counts jsonb DEFAULT '{}'::jsonb NOT NULL,
    output_ciphertext bytea,
    output_nonce bytea,
    output_key_id text,
    CONSTRAINT run_steps_output_sealed_whole CHECK ((((output_ciphertext IS NULL) AND (output_nonce IS NULL) AND (output_key_id IS NULL)) OR ((output_ciphertext IS NOT NULL) AND (length(output_ciphertext) >= 16) AND (output_nonce IS NOT NULL) AND (length(output_nonce) = 12) AND (output_key_id ~ '^k1:[0-9a-f]{16}$'::text)))),
    CONSTRAINT run_steps_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'skipped'::text]))),
    CONSTRAINT run_steps_step_index_check CHECK ((step_index >= 0))
);

ALTER TABLE ONLY public.run_steps FORCE ROW LEVEL SECURITY;

ALTER TABLE public.run_steps OWNER TO migrator;

CREATE TABLE public.runs (
    client_id uuid NOT NULL,
    run_id uuid DEFAULT gen_random_uuid() NOT NULL,
    automation_id uuid NOT NULL,
    automation_version integer NOT NULL,
    trigger_kind text NOT NULL,
    scheduled_for timestamp with time zone,
    status text DEFAULT 'queued'::text NOT NULL,
    error_class text,
    error_message text,
    queued_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    execution integer DEFAULT 0 NOT NULL,
    retry_of uuid,
    trigger_item text,
    CONSTRAINT runs_execution_check CHECK ((execution >= 0)),
    CONSTRAINT runs_poll_has_item CHECK (((trigger_kind <> 'poll'::text) OR (trigger_item IS NOT NULL))),
    CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text, 'stopped'::text]))),
    CONSTRAINT runs_trigger_item_check CHECK (((length(trigger_item) >= 1) AND (length(trigger_item) <= 300))),
    CONSTRAINT runs_trigger_kind_check CHECK ((trigger_kind = ANY (ARRAY['manual'::text, 'schedule'::text, 'webhook'::text, 'poll'::text])))
);

ALTER TABLE ONLY public.runs FORCE ROW LEVEL SECURITY;

ALTER TABLE public.runs OWNER TO migrator;

CREATE TABLE public.sessions (
    client_id uuid NOT NULL,
    session_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    device text DEFAULT 'Unknown device'::text NOT NULL,
    CONSTRAINT sessions_device_check CHECK ((length(device) <= 60)),
    CONSTRAINT sessions_session_hash_check CHECK ((length(session_hash) = 32))
);

ALTER TABLE ONLY public.sessions FORCE ROW LEVEL SECURITY;

ALTER TABLE public.sessions OWNER TO migrator;

CREATE TABLE public.sign_in_tickets (
    client_id uuid NOT NULL,
    ticket_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sign_in_tickets_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT sign_in_tickets_ticket_hash_check CHECK ((length(ticket_hash) = 32))
);

ALTER TABLE ONLY public.sign_in_tickets FORCE ROW LEVEL SECURITY;

ALTER TABLE public.sign_in_tickets OWNER TO migrator;

CREATE TABLE public.user_passkeys (
    client_id uuid NOT NULL,
    passkey_id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    credential_id bytea NOT NULL,
    public_key bytea NOT NULL,
    sign_count bigint DEFAULT 0 NOT NULL,
    transports text[] DEFAULT '{}'::text[] NOT NULL,
    label text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    CONSTRAINT user_passkeys_credential_id_check CHECK (((length(credential_id) >= 16) AND (length(credential_id) <= 1023))),
    CONSTRAINT user_passkeys_label_check CHECK (((length(label) >= 1) AND (length(label) <= 60))),
    CONSTRAINT user_passkeys_public_key_check CHECK (((length(public_key) >= 16) AND (length(public_key) <= 2048))),
    CONSTRAINT user_passkeys_sign_count_check CHECK ((sign_count >= 0)),
    CONSTRAINT user_passkeys_transports_check CHECK ((cardinality(transports) <= 8))
);

ALTER TABLE ONLY public.user_passkeys FORCE ROW LEVEL SECURITY;

ALTER TABLE public.user_passkeys OWNER TO migrator;

CREATE TABLE public.user_totp (
    client_id uuid NOT NULL,
    user_id uuid NOT NULL,
    key_id text NOT NULL,
    nonce bytea NOT NULL,
    ciphertext bytea NOT NULL,
    confirmed_at timestamp with time zone,
    last_step bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT user_totp_nonce_check CHECK ((length(nonce) = 12))
);

ALTER TABLE ONLY public.user_totp FORCE ROW LEVEL SECURITY;

ALTER TABLE public.user_totp OWNER TO migrator;

CREATE TABLE public.users (
    client_id uuid NOT NULL,
    user_id uuid DEFAULT gen_random_uuid() NOT NULL,
    email public.citext NOT NULL,
    password_hash text NOT NULL,
    password_changed_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    email_verified_at timestamp with time zone,
    role text DEFAULT 'owner'::text NOT NULL,
    CONSTRAINT users_email_check CHECK (((length((email)::text) >= 3) AND (length((email)::text) <= 254))),
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['owner'::text, 'member'::text])))
);

ALTER TABLE ONLY public.users FORCE ROW LEVEL SECURITY;

ALTER TABLE public.users OWNER TO migrator;

CREATE TABLE public.vault_key_usage (
    key_id text NOT NULL,
    encryptions bigint DEFAULT 0 NOT NULL,
    first_used_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT vault_key_usage_encryptions_check CHECK ((encryptions >= 0)),
    CONSTRAINT vault_key_usage_key_id_check CHECK ((key_id ~ '^k1:[0-9a-f]{16}$'::text))
);

ALTER TABLE public.vault_key_usage OWNER TO migrator;

CREATE TABLE public.webhook_reveals (
    client_id uuid NOT NULL,
    reveal_id uuid DEFAULT gen_random_uuid() NOT NULL,
    automation_id uuid NOT NULL,
    masked bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_reveals_masked_check CHECK (((length(masked) >= 32) AND (length(masked) <= 256)))
);

ALTER TABLE ONLY public.webhook_reveals FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_reveals OWNER TO migrator;

ALTER TABLE ONLY public.procrastinate_events ALTER COLUMN id SET DEFAULT nextval('public.procrastinate_events_id_seq'::regclass);

ALTER TABLE ONLY public.procrastinate_jobs ALTER COLUMN id SET DEFAULT nextval('public.procrastinate_jobs_id_seq'::regclass);

ALTER TABLE ONLY public.procrastinate_periodic_defers ALTER COLUMN id SET DEFAULT nextval('public.procrastinate_periodic_defers_id_seq'::regclass);

ALTER TABLE ONLY public.account_emails
    ADD CONSTRAINT account_emails_pkey PRIMARY KEY (email_id);

ALTER TABLE ONLY public.account_emails
    ADD CONSTRAINT account_emails_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.automation_versions
    ADD CONSTRAINT automation_versions_pkey PRIMARY KEY (client_id, automation_id, version);

ALTER TABLE ONLY public.automations
    ADD CONSTRAINT automations_automation_id_key UNIQUE (automation_id);

ALTER TABLE ONLY public.automations
    ADD CONSTRAINT automations_pkey PRIMARY KEY (client_id, automation_id);

ALTER TABLE ONLY public.automations
    ADD CONSTRAINT automations_webhook_secret_hash_key UNIQUE (webhook_secret_hash);

ALTER TABLE ONLY public.chat_drafts
    ADD CONSTRAINT chat_drafts_draft_id_key UNIQUE (draft_id);

ALTER TABLE ONLY public.chat_drafts
    ADD CONSTRAINT chat_drafts_pkey PRIMARY KEY (client_id, draft_id);

ALTER TABLE ONLY public.chat_messages
    ADD CONSTRAINT chat_messages_pkey PRIMARY KEY (client_id, message_id);

ALTER TABLE ONLY public.clients
    ADD CONSTRAINT clients_pkey PRIMARY KEY (client_id);

ALTER TABLE ONLY public.connections
    ADD CONSTRAINT connections_connection_id_key UNIQUE (connection_id);

ALTER TABLE ONLY public.connections
    ADD CONSTRAINT connections_pkey PRIMARY KEY (client_id, connection_id);

ALTER TABLE ONLY public.cost_events
    ADD CONSTRAINT cost_events_pkey PRIMARY KEY (client_id, cost_event_id);

ALTER TABLE ONLY public.credential_access
    ADD CONSTRAINT credential_access_pkey PRIMARY KEY (client_id, access_id);

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_client_id_connection_id_purpose_key UNIQUE (client_id, connection_id, purpose);

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_credential_id_key UNIQUE (credential_id);

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_pkey PRIMARY KEY (client_id, credential_id);

ALTER TABLE ONLY public.hapex_migrations
    ADD CONSTRAINT hapex_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.login_throttle
    ADD CONSTRAINT login_throttle_pkey PRIMARY KEY (bucket);

ALTER TABLE ONLY public.monthly_costs
    ADD CONSTRAINT monthly_costs_key UNIQUE NULLS NOT DISTINCT (client_id, month, source, provider, model);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_client_id_kind_event_key_key UNIQUE (client_id, kind, event_key);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (client_id, notification_id);

ALTER TABLE ONLY public.oauth_states
    ADD CONSTRAINT oauth_states_pkey PRIMARY KEY (state_hash);

ALTER TABLE ONLY public.passkey_challenges
    ADD CONSTRAINT passkey_challenges_pkey PRIMARY KEY (client_id, challenge_hash);

ALTER TABLE ONLY public.passkey_sign_in_challenges
    ADD CONSTRAINT passkey_sign_in_challenges_pkey PRIMARY KEY (challenge_hash);

ALTER TABLE ONLY public.poll_seen
    ADD CONSTRAINT poll_seen_pkey PRIMARY KEY (client_id, automation_id, item_key);

ALTER TABLE ONLY public.poll_states
    ADD CONSTRAINT poll_states_pkey PRIMARY KEY (client_id, automation_id);

ALTER TABLE ONLY public.procrastinate_events
    ADD CONSTRAINT procrastinate_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.procrastinate_jobs
    ADD CONSTRAINT procrastinate_jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_unique UNIQUE (task_name, periodic_id, defer_timestamp);

ALTER TABLE ONLY public.procrastinate_workers
    ADD CONSTRAINT procrastinate_workers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.recovery_codes
    ADD CONSTRAINT recovery_codes_pkey PRIMARY KEY (client_id, user_id, code_hash);

ALTER TABLE ONLY public.run_steps
    ADD CONSTRAINT run_steps_pkey PRIMARY KEY (client_id, run_id, step_index);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (client_id, run_id);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_run_id_key UNIQUE (run_id);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (session_hash);

ALTER TABLE ONLY public.sign_in_tickets
    ADD CONSTRAINT sign_in_tickets_pkey PRIMARY KEY (client_id, ticket_hash);

ALTER TABLE ONLY public.user_passkeys
    ADD CONSTRAINT user_passkeys_client_id_credential_id_key UNIQUE (client_id, credential_id);

ALTER TABLE ONLY public.user_passkeys
    ADD CONSTRAINT user_passkeys_pkey PRIMARY KEY (client_id, passkey_id);

ALTER TABLE ONLY public.user_totp
    ADD CONSTRAINT user_totp_pkey PRIMARY KEY (client_id, user_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (client_id, user_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_user_id_key UNIQUE (user_id);

ALTER TABLE ONLY public.vault_key_usage
    ADD CONSTRAINT vault_key_usage_pkey PRIMARY KEY (key_id);

ALTER TABLE ONLY public.webhook_reveals
    ADD CONSTRAINT webhook_reveals_pkey PRIMARY KEY (client_id, reveal_id);

CREATE INDEX account_emails_client_user_idx ON public.account_emails USING btree (client_id, user_id, kind, created_at);

CREATE INDEX account_emails_pending_idx ON public.account_emails USING btree (created_at) WHERE (status = 'pending'::text);

CREATE INDEX automations_due_idx ON public.automations USING btree (next_run_at) WHERE (status = 'enabled'::text);

CREATE INDEX chat_drafts_client_updated_idx ON public.chat_drafts USING btree (client_id, updated_at DESC);

CREATE INDEX chat_messages_client_draft_idx ON public.chat_messages USING btree (client_id, draft_id, created_at);

CREATE INDEX connections_client_provider_idx ON public.connections USING btree (client_id, provider);

CREATE INDEX cost_events_client_month_idx ON public.cost_events USING btree (client_id, occurred_at);

CREATE INDEX cost_events_client_run_idx ON public.cost_events USING btree (client_id, run_id) WHERE (run_id IS NOT NULL);

CREATE INDEX cost_events_occurred_idx ON public.cost_events USING btree (occurred_at);

CREATE INDEX credential_access_connection_idx ON public.credential_access USING btree (client_id, connection_id, accessed_at DESC);

CREATE INDEX credentials_key_id_idx ON public.credentials USING btree (key_id);

CREATE INDEX idx_procrastinate_jobs_worker_not_null ON public.procrastinate_jobs USING btree (worker_id) WHERE ((worker_id IS NOT NULL) AND (status = 'doing'::public.procrastinate_job_status));

CREATE INDEX idx_procrastinate_workers_last_heartbeat ON public.procrastinate_workers USING btree (last_heartbeat);

CREATE INDEX notifications_client_created_idx ON public.notifications USING btree (client_id, created_at DESC);

CREATE INDEX notifications_pending_idx ON public.notifications USING btree (created_at) WHERE (email_status = 'pending'::text);

CREATE INDEX oauth_states_client_idx ON public.oauth_states USING btree (client_id, expires_at);

CREATE INDEX oauth_states_session_idx ON public.oauth_states USING btree (session_hash);

CREATE INDEX passkey_sign_in_challenges_expiry_idx ON public.passkey_sign_in_challenges USING btree (expires_at);

CREATE INDEX poll_seen_started_idx ON public.poll_seen USING btree (started_at) WHERE (started_at IS NOT NULL);

CREATE INDEX poll_seen_waiting_idx ON public.poll_seen USING btree (client_id, automation_id, "position") WHERE (started_at IS NULL);

CREATE INDEX procrastinate_events_job_id_fkey_v1 ON public.procrastinate_events USING btree (job_id);

CREATE INDEX procrastinate_jobs_id_lock_idx_v1 ON public.procrastinate_jobs USING btree (id, lock) WHERE (status = ANY (ARRAY['todo'::public.procrastinate_job_status, 'doing'::public.procrastinate_job_status]));

CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_v1 ON public.procrastinate_jobs USING btree (lock) WHERE (status = 'doing'::public.procrastinate_job_status);

CREATE INDEX procrastinate_jobs_priority_idx_v1 ON public.procrastinate_jobs USING btree (priority DESC, id) WHERE (status = 'todo'::public.procrastinate_job_status);

CREATE INDEX procrastinate_jobs_queue_name_idx_v1 ON public.procrastinate_jobs USING btree (queue_name);

CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_v1 ON public.procrastinate_jobs USING btree (queueing_lock) WHERE (status = 'todo'::public.procrastinate_job_status);

CREATE INDEX procrastinate_periodic_defers_job_id_fkey_v1 ON public.procrastinate_periodic_defers USING btree (job_id);

CREATE INDEX run_steps_output_key_idx ON public.run_steps USING btree (output_key_id) WHERE (output_key_id IS NOT NULL);

CREATE INDEX runs_client_automation_idx ON public.runs USING btree (client_id, automation_id, queued_at DESC);

CREATE INDEX runs_client_queued_idx ON public.runs USING btree (client_id, queued_at DESC);

CREATE INDEX runs_client_retry_of_idx ON public.runs USING btree (client_id, retry_of) WHERE (retry_of IS NOT NULL);

CREATE UNIQUE INDEX runs_poll_item_key ON public.runs USING btree (client_id, automation_id, trigger_item) WHERE (trigger_kind = 'poll'::text);

CREATE INDEX runs_queued_idx ON public.runs USING btree (queued_at);

CREATE UNIQUE INDEX runs_schedule_slot_key ON public.runs USING btree (client_id, automation_id, scheduled_for) WHERE (trigger_kind = 'schedule'::text);

CREATE INDEX sessions_client_user_idx ON public.sessions USING btree (client_id, user_id);

CREATE INDEX sessions_expires_idx ON public.sessions USING btree (expires_at);

CREATE INDEX user_passkeys_user_idx ON public.user_passkeys USING btree (client_id, user_id);

CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email);

CREATE TRIGGER account_emails_defer AFTER INSERT ON public.account_emails FOR EACH ROW EXECUTE FUNCTION public.hapex_defer_account_email();

CREATE TRIGGER automations_forget_step_outputs AFTER UPDATE OF store_outputs ON public.automations FOR EACH ROW WHEN ((old.store_outputs AND (NOT new.store_outputs))) EXECUTE FUNCTION public.hapex_forget_step_outputs();

CREATE TRIGGER automations_notice_paused AFTER UPDATE OF status ON public.automations FOR EACH ROW WHEN (((new.status = 'paused'::text) AND (old.status IS DISTINCT FROM 'paused'::text))) EXECUTE FUNCTION public.hapex_notice_automation_paused();

CREATE TRIGGER connections_notice_needs_reauth AFTER UPDATE OF status ON public.connections FOR EACH ROW WHEN (((new.status = 'needs_reauth'::text) AND (old.status IS DISTINCT FROM 'needs_reauth'::text))) EXECUTE FUNCTION public.hapex_notice_connection_needs_reauth();

CREATE TRIGGER cost_events_roll_up AFTER INSERT ON public.cost_events REFERENCING NEW TABLE AS new_cost_events FOR EACH STATEMENT EXECUTE FUNCTION public.hapex_roll_up_cost_events();

CREATE TRIGGER credentials_bump_revision BEFORE UPDATE ON public.credentials FOR EACH ROW EXECUTE FUNCTION public.hapex_credentials_bump_revision();

CREATE TRIGGER procrastinate_jobs_notify_queue_job_aborted_v1 AFTER UPDATE OF abort_requested ON public.procrastinate_jobs FOR EACH ROW WHEN (((old.abort_requested = false) AND (new.abort_requested = true) AND (new.status = 'doing'::public.procrastinate_job_status))) EXECUTE FUNCTION public.procrastinate_notify_queue_abort_job_v1();

CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1 AFTER INSERT ON public.procrastinate_jobs FOR EACH ROW WHEN ((new.status = 'todo'::public.procrastinate_job_status)) EXECUTE FUNCTION public.procrastinate_notify_queue_job_inserted_v1();

CREATE TRIGGER procrastinate_trigger_abort_requested_events_v1 AFTER UPDATE OF abort_requested ON public.procrastinate_jobs FOR EACH ROW WHEN ((new.abort_requested = true)) EXECUTE FUNCTION public.procrastinate_trigger_abort_requested_events_procedure_v1();

CREATE TRIGGER procrastinate_trigger_delete_jobs_v1 BEFORE DELETE ON public.procrastinate_jobs FOR EACH ROW EXECUTE FUNCTION public.procrastinate_unlink_periodic_defers_v1();

CREATE TRIGGER procrastinate_trigger_scheduled_events_v1 AFTER INSERT OR UPDATE ON public.procrastinate_jobs FOR EACH ROW WHEN (((new.scheduled_at IS NOT NULL) AND (new.status = 'todo'::public.procrastinate_job_status))) EXECUTE FUNCTION public.procrastinate_trigger_function_scheduled_events_v1();

CREATE TRIGGER procrastinate_trigger_status_events_insert_v1 AFTER INSERT ON public.procrastinate_jobs FOR EACH ROW WHEN ((new.status = 'todo'::public.procrastinate_job_status)) EXECUTE FUNCTION public.procrastinate_trigger_function_status_events_insert_v1();

CREATE TRIGGER procrastinate_trigger_status_events_update_v1 AFTER UPDATE OF status ON public.procrastinate_jobs FOR EACH ROW EXECUTE FUNCTION public.procrastinate_trigger_function_status_events_update_v1();

ALTER TABLE ONLY public.account_emails
    ADD CONSTRAINT account_emails_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.account_emails
    ADD CONSTRAINT account_emails_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.automation_versions
    ADD CONSTRAINT automation_versions_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.automation_versions
    ADD CONSTRAINT automation_versions_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.automations
    ADD CONSTRAINT automations_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.chat_drafts
    ADD CONSTRAINT chat_drafts_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE SET NULL (automation_id);

ALTER TABLE ONLY public.chat_drafts
    ADD CONSTRAINT chat_drafts_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.chat_messages
    ADD CONSTRAINT chat_messages_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.connections
    ADD CONSTRAINT connections_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.cost_events
    ADD CONSTRAINT cost_events_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.cost_events
    ADD CONSTRAINT cost_events_client_id_run_id_fkey FOREIGN KEY (client_id, run_id) REFERENCES public.runs(client_id, run_id) ON DELETE SET NULL (run_id);

ALTER TABLE ONLY public.credential_access
    ADD CONSTRAINT credential_access_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_client_id_connection_id_fkey FOREIGN KEY (client_id, connection_id) REFERENCES public.connections(client_id, connection_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.monthly_costs
    ADD CONSTRAINT monthly_costs_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.oauth_states
    ADD CONSTRAINT oauth_states_client_id_connection_id_fkey FOREIGN KEY (client_id, connection_id) REFERENCES public.connections(client_id, connection_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.oauth_states
    ADD CONSTRAINT oauth_states_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.oauth_states
    ADD CONSTRAINT oauth_states_session_hash_fkey FOREIGN KEY (session_hash) REFERENCES public.sessions(session_hash) ON DELETE CASCADE;

ALTER TABLE ONLY public.passkey_challenges
    ADD CONSTRAINT passkey_challenges_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.passkey_challenges
    ADD CONSTRAINT passkey_challenges_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.poll_seen
    ADD CONSTRAINT poll_seen_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.poll_seen
    ADD CONSTRAINT poll_seen_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.poll_states
    ADD CONSTRAINT poll_states_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.poll_states
    ADD CONSTRAINT poll_states_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.procrastinate_events
    ADD CONSTRAINT procrastinate_events_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.procrastinate_jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.procrastinate_jobs
    ADD CONSTRAINT procrastinate_jobs_worker_id_fkey FOREIGN KEY (worker_id) REFERENCES public.procrastinate_workers(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.procrastinate_jobs(id);

ALTER TABLE ONLY public.recovery_codes
    ADD CONSTRAINT recovery_codes_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.recovery_codes
    ADD CONSTRAINT recovery_codes_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.run_steps
    ADD CONSTRAINT run_steps_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.run_steps
    ADD CONSTRAINT run_steps_client_id_run_id_fkey FOREIGN KEY (client_id, run_id) REFERENCES public.runs(client_id, run_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_retry_of_fkey FOREIGN KEY (client_id, retry_of) REFERENCES public.runs(client_id, run_id) ON DELETE SET NULL (retry_of);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.sign_in_tickets
    ADD CONSTRAINT sign_in_tickets_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_passkeys
    ADD CONSTRAINT user_passkeys_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_passkeys
    ADD CONSTRAINT user_passkeys_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_totp
    ADD CONSTRAINT user_totp_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_totp
    ADD CONSTRAINT user_totp_client_id_user_id_fkey FOREIGN KEY (client_id, user_id) REFERENCES public.users(client_id, user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.clients(client_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_reveals
    ADD CONSTRAINT webhook_reveals_client_id_automation_id_fkey FOREIGN KEY (client_id, automation_id) REFERENCES public.automations(client_id, automation_id) ON DELETE CASCADE;

ALTER TABLE public.account_emails ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.automation_versions ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.automations ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.chat_drafts ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.chat_messages ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.clients ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.connections ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.cost_events ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.credential_access ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.credentials ENABLE ROW LEVEL SECURITY;

CREATE POLICY definer_add_user ON public.users FOR INSERT TO hapex_definer WITH CHECK (true);

CREATE POLICY definer_admin_count ON public.clients FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_admin_count ON public.connections FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_admin_count ON public.runs FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_due_schedules ON public.automations FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_email_changed ON public.account_emails FOR INSERT TO hapex_definer WITH CHECK ((kind = 'email_changed'::text));

CREATE POLICY definer_find_webhook ON public.automations FOR SELECT TO hapex_definer USING ((webhook_secret_hash IS NOT NULL));

CREATE POLICY definer_link_lookup ON public.account_emails FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_login_lookup ON public.users FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_only_forgets_outputs ON public.run_steps AS RESTRICTIVE FOR UPDATE TO hapex_definer USING (true) WITH CHECK (((output_ciphertext IS NULL) AND (output_nonce IS NULL) AND (output_key_id IS NULL)));

CREATE POLICY definer_output_census ON public.run_steps FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_pending_account_emails ON public.account_emails FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_pending_notices ON public.notifications FOR SELECT TO hapex_definer USING ((email_status = 'pending'::text));

CREATE POLICY definer_prune_costs ON public.cost_events FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_prune_costs_delete ON public.cost_events FOR DELETE TO hapex_definer USING (true);

CREATE POLICY definer_prune_deleted_automations ON public.automations FOR DELETE TO hapex_definer USING ((status = 'deleted'::text));

CREATE POLICY definer_prune_runs ON public.runs FOR DELETE TO hapex_definer USING (true);

CREATE POLICY definer_prune_seen ON public.poll_seen FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_prune_seen_delete ON public.poll_seen FOR DELETE TO hapex_definer USING ((started_at IS NOT NULL));

CREATE POLICY definer_roll_up_costs_insert ON public.monthly_costs FOR INSERT TO hapex_definer WITH CHECK (true);

CREATE POLICY definer_roll_up_costs_select ON public.monthly_costs FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_roll_up_costs_update ON public.monthly_costs FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_session_end ON public.sessions FOR DELETE TO hapex_definer USING (true);

CREATE POLICY definer_session_lookup ON public.sessions FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_session_prune ON public.sessions FOR DELETE TO hapex_definer USING ((expires_at < now()));

CREATE POLICY definer_session_start ON public.sessions FOR INSERT TO hapex_definer WITH CHECK (true);

CREATE POLICY definer_session_touch ON public.sessions FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_set_password ON public.users FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_set_webhook ON public.automations FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_sign_in_challenges ON public.passkey_sign_in_challenges TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_sign_up ON public.clients FOR INSERT TO hapex_definer WITH CHECK (true);

CREATE POLICY definer_state_prune ON public.oauth_states FOR DELETE TO hapex_definer USING ((expires_at <= now()));

CREATE POLICY definer_state_prune_read ON public.oauth_states FOR SELECT TO hapex_definer USING ((expires_at <= now()));

CREATE POLICY definer_use_link ON public.account_emails FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);

CREATE POLICY definer_vault_key_ids ON public.credentials FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_vault_key_ids ON public.user_totp FOR SELECT TO hapex_definer USING (true);

CREATE POLICY definer_write_notice ON public.notifications FOR INSERT TO hapex_definer WITH CHECK (true);

ALTER TABLE public.monthly_costs ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.oauth_states ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.passkey_challenges ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.passkey_sign_in_challenges ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.poll_seen ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.poll_states ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.recovery_codes ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.run_steps ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.runs ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.sign_in_tickets ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON public.account_emails USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.automation_versions USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.automations USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.chat_drafts USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.chat_messages USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.clients USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.connections USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.cost_events USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.credential_access USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.credentials USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.monthly_costs USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.notifications USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.oauth_states USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.passkey_challenges USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.poll_seen USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.poll_states USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.recovery_codes USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.run_steps USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.runs USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.sessions USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.sign_in_tickets USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.user_passkeys USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.user_totp USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.users USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

CREATE POLICY tenant_isolation ON public.webhook_reveals USING ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif"))) WITH CHECK ((client_id = ( SELECT (NULLIF(current_setting('app.client_id'::text, true), ''::text))::uuid AS "nullif")));

ALTER TABLE public.user_passkeys ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.user_totp ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_reveals ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA public TO hapex_intake;
GRANT USAGE ON SCHEMA public TO hapex_agent;
GRANT USAGE ON SCHEMA public TO hapex_definer;

REVOKE ALL ON FUNCTION public.hapex_account_email_recipient(p_client_id uuid, p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_account_email_recipient(p_client_id uuid, p_user_id uuid) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_admin_client_report(p_since timestamp with time zone, p_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_admin_client_report(p_since timestamp with time zone, p_until timestamp with time zone) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_admin_failing_automations(p_since timestamp with time zone, p_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_admin_failing_automations(p_since timestamp with time zone, p_until timestamp with time zone) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_admin_overview() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_admin_overview() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_admin_reauth_connections() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_admin_reauth_connections() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_change_email_by_link(p_token text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_change_email_by_link(p_token text) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_connections_due_for_check(p_expiring_before timestamp with time zone, p_unproven_before timestamp with time zone, p_retry_after timestamp with time zone, p_capabilities text[], p_capability_providers text[], p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_connections_due_for_check(p_expiring_before timestamp with time zone, p_unproven_before timestamp with time zone, p_retry_after timestamp with time zone, p_capabilities text[], p_capability_providers text[], p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_credentials_bump_revision() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_defer_account_email() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_due_polls(p_now timestamp with time zone, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_due_polls(p_now timestamp with time zone, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_due_schedules(p_now timestamp with time zone, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_due_schedules(p_now timestamp with time zone, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_end_session(p_session_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_end_session(p_session_hash bytea) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_find_account(p_email text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_find_account(p_email text) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_find_account_link(p_token_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_find_account_link(p_token_hash bytea) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_find_login(p_email text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_find_login(p_email text) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_find_session(p_session_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_find_session(p_session_hash bytea) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_find_webhook(p_secret_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_find_webhook(p_secret_hash bytea) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_forget_step_outputs() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_invite_member(p_session_secret text, p_email text, p_role text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_invite_member(p_session_secret text, p_email text, p_role text) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_issue_passkey_sign_in_challenge(p_challenge_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_issue_passkey_sign_in_challenge(p_challenge_hash bytea) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_notice_automation_paused() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_notice_connection_needs_reauth() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_notice_recipients(p_client_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_notice_recipients(p_client_id uuid) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_pending_account_emails(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_pending_account_emails(p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_pending_notifications(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_pending_notifications(p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_prune_expired_oauth_states() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_prune_expired_oauth_states() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_prune_expired_sessions() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_prune_expired_sessions() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_prune_run_records(p_older_than interval, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_prune_run_records(p_older_than interval, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_roll_up_cost_events() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.hapex_session_proves_client(p_client_id uuid, p_session_secret text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_session_proves_client(p_client_id uuid, p_session_secret text) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_set_password_by_link(p_token text, p_password_hash text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_set_password_by_link(p_token text, p_password_hash text) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_set_webhook_secret(p_session_secret text, p_automation_id uuid, p_secret_hash bytea) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_sign_up(p_client_id uuid, p_name text, p_email text, p_password_hash text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_sign_up(p_client_id uuid, p_name text, p_email text, p_password_hash text) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_spend_passkey_sign_in_challenge(p_challenge_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_spend_passkey_sign_in_challenge(p_challenge_hash bytea) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval, p_device text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea, p_idle interval, p_absolute interval, p_device text) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_touch_session(p_session_hash bytea, p_idle interval, p_absolute interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_touch_session(p_session_hash bytea, p_idle interval, p_absolute interval) TO hapex_intake;

REVOKE ALL ON FUNCTION public.hapex_unfinished_runs(p_older_than interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_unfinished_runs(p_older_than interval) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_count_encryptions(p_key_id text, p_count integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_count_encryptions(p_key_id text, p_count integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_key_census() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_key_census() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_output_key_census() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_output_key_census() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_output_rotation_batch(p_primary_key_id text, p_after_run uuid, p_after_step integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_output_rotation_batch(p_primary_key_id text, p_after_run uuid, p_after_step integer, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_rotation_batch(p_primary_key_id text, p_after uuid, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_rotation_batch(p_primary_key_id text, p_after uuid, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_totp_key_census() FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_totp_key_census() TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_vault_totp_rotation_batch(p_primary_key_id text, p_after_client uuid, p_after_user uuid, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_vault_totp_rotation_batch(p_primary_key_id text, p_after_client uuid, p_after_user uuid, p_limit integer) TO hapex_agent;

REVOKE ALL ON FUNCTION public.hapex_webhook_proves_client(p_client_id uuid, p_automation_id uuid, p_webhook_secret text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hapex_webhook_proves_client(p_client_id uuid, p_automation_id uuid, p_webhook_secret text) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_cancel_job_v1(job_id bigint, abort boolean, delete_job boolean) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_defer_jobs_v1(jobs public.procrastinate_job_to_defer_v1[]) TO hapex_agent;
GRANT ALL ON FUNCTION public.procrastinate_defer_jobs_v1(jobs public.procrastinate_job_to_defer_v1[]) TO hapex_definer;

GRANT ALL ON FUNCTION public.procrastinate_defer_periodic_job_v2(_queue_name character varying, _lock character varying, _queueing_lock character varying, _task_name character varying, _priority integer, _periodic_id character varying, _defer_timestamp bigint, _args jsonb) TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.procrastinate_jobs TO hapex_agent;
GRANT INSERT ON TABLE public.procrastinate_jobs TO hapex_definer;

GRANT SELECT(id) ON TABLE public.procrastinate_jobs TO hapex_definer;

GRANT SELECT(queueing_lock) ON TABLE public.procrastinate_jobs TO hapex_definer;

GRANT SELECT(status) ON TABLE public.procrastinate_jobs TO hapex_definer;

GRANT ALL ON FUNCTION public.procrastinate_fetch_job_v2(target_queue_names character varying[], p_worker_id bigint) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_finish_job_v1(job_id bigint, end_status public.procrastinate_job_status, delete_job boolean) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_notify_queue_abort_job_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_notify_queue_job_inserted_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_register_worker_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_retry_job_v1(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_retry_job_v2(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_trigger_abort_requested_events_procedure_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_trigger_function_scheduled_events_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_trigger_function_status_events_insert_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_trigger_function_status_events_update_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_unlink_periodic_defers_v1() TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_unregister_worker_v1(worker_id bigint) TO hapex_agent;

GRANT ALL ON FUNCTION public.procrastinate_update_heartbeat_v1(worker_id bigint) TO hapex_agent;

GRANT DELETE ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(client_id),INSERT(client_id) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(client_id),INSERT(client_id) ON TABLE public.account_emails TO hapex_definer;
GRANT INSERT(client_id) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(email_id) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(email_id) ON TABLE public.account_emails TO hapex_definer;

GRANT SELECT(user_id),INSERT(user_id) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(user_id),INSERT(user_id) ON TABLE public.account_emails TO hapex_definer;
GRANT INSERT(user_id) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(kind),INSERT(kind) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(kind),INSERT(kind) ON TABLE public.account_emails TO hapex_definer;
GRANT INSERT(kind) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(to_address) ON TABLE public.account_emails TO hapex_intake;
GRANT INSERT(to_address) ON TABLE public.account_emails TO hapex_agent;
GRANT SELECT(to_address),INSERT(to_address) ON TABLE public.account_emails TO hapex_definer;

GRANT INSERT(link_base) ON TABLE public.account_emails TO hapex_agent;
GRANT INSERT(link_base) ON TABLE public.account_emails TO hapex_intake;

GRANT UPDATE(token_hash) ON TABLE public.account_emails TO hapex_agent;
GRANT SELECT(token_hash) ON TABLE public.account_emails TO hapex_definer;

GRANT INSERT(link_ttl) ON TABLE public.account_emails TO hapex_agent;
GRANT INSERT(link_ttl) ON TABLE public.account_emails TO hapex_intake;

GRANT SELECT(expires_at) ON TABLE public.account_emails TO hapex_intake;
GRANT UPDATE(expires_at) ON TABLE public.account_emails TO hapex_agent;
GRANT SELECT(expires_at) ON TABLE public.account_emails TO hapex_definer;

GRANT SELECT(used_at),UPDATE(used_at) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(used_at),UPDATE(used_at) ON TABLE public.account_emails TO hapex_definer;
GRANT UPDATE(used_at) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(status) ON TABLE public.account_emails TO hapex_intake;
GRANT UPDATE(status) ON TABLE public.account_emails TO hapex_agent;
GRANT SELECT(status) ON TABLE public.account_emails TO hapex_definer;

GRANT UPDATE(attempts) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT(created_at) ON TABLE public.account_emails TO hapex_intake;
GRANT SELECT(created_at) ON TABLE public.account_emails TO hapex_definer;

GRANT SELECT(sent_at) ON TABLE public.account_emails TO hapex_intake;
GRANT UPDATE(sent_at) ON TABLE public.account_emails TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.automation_versions TO hapex_intake;
GRANT SELECT ON TABLE public.automation_versions TO hapex_agent;

GRANT SELECT,DELETE ON TABLE public.automations TO hapex_intake;
GRANT SELECT ON TABLE public.automations TO hapex_agent;
GRANT DELETE ON TABLE public.automations TO hapex_definer;

GRANT SELECT(client_id) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(client_id) ON TABLE public.automations TO hapex_intake;

GRANT SELECT(automation_id) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(automation_id) ON TABLE public.automations TO hapex_intake;

GRANT INSERT(name),UPDATE(name) ON TABLE public.automations TO hapex_intake;

GRANT UPDATE(status) ON TABLE public.automations TO hapex_agent;
GRANT SELECT(status) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(status),UPDATE(status) ON TABLE public.automations TO hapex_intake;

GRANT UPDATE(paused_reason) ON TABLE public.automations TO hapex_agent;
GRANT SELECT(paused_reason) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(paused_reason),UPDATE(paused_reason) ON TABLE public.automations TO hapex_intake;

GRANT INSERT(version),UPDATE(version) ON TABLE public.automations TO hapex_intake;

GRANT SELECT(trigger) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(trigger),UPDATE(trigger) ON TABLE public.automations TO hapex_intake;

GRANT SELECT(steps) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(steps),UPDATE(steps) ON TABLE public.automations TO hapex_intake;

GRANT INSERT(store_outputs),UPDATE(store_outputs) ON TABLE public.automations TO hapex_intake;

GRANT UPDATE(next_run_at) ON TABLE public.automations TO hapex_agent;
GRANT SELECT(next_run_at) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(next_run_at),UPDATE(next_run_at) ON TABLE public.automations TO hapex_intake;

GRANT INSERT(created_at) ON TABLE public.automations TO hapex_intake;

GRANT UPDATE(updated_at) ON TABLE public.automations TO hapex_agent;
GRANT SELECT(updated_at),UPDATE(updated_at) ON TABLE public.automations TO hapex_definer;
GRANT INSERT(updated_at),UPDATE(updated_at) ON TABLE public.automations TO hapex_intake;

GRANT SELECT(webhook_secret_hash),UPDATE(webhook_secret_hash) ON TABLE public.automations TO hapex_definer;

GRANT SELECT,INSERT,DELETE ON TABLE public.chat_drafts TO hapex_intake;
GRANT SELECT ON TABLE public.chat_drafts TO hapex_agent;

GRANT UPDATE(proposal) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(proposal_summary) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(proposal_revision) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(prompt_version) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(automation_id) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(approved_revision) ON TABLE public.chat_drafts TO hapex_intake;

GRANT UPDATE(updated_at) ON TABLE public.chat_drafts TO hapex_intake;

GRANT SELECT,INSERT,DELETE ON TABLE public.chat_messages TO hapex_intake;
GRANT SELECT ON TABLE public.chat_messages TO hapex_agent;

GRANT SELECT,INSERT,DELETE ON TABLE public.clients TO hapex_intake;
GRANT SELECT ON TABLE public.clients TO hapex_agent;

GRANT SELECT(client_id),INSERT(client_id) ON TABLE public.clients TO hapex_definer;

GRANT UPDATE(name) ON TABLE public.clients TO hapex_intake;
GRANT SELECT(name),INSERT(name) ON TABLE public.clients TO hapex_definer;

GRANT UPDATE(monthly_budget_microusd) ON TABLE public.clients TO hapex_intake;
GRANT SELECT(monthly_budget_microusd) ON TABLE public.clients TO hapex_definer;

GRANT UPDATE(updated_at) ON TABLE public.clients TO hapex_intake;

GRANT UPDATE(require_second_factor) ON TABLE public.clients TO hapex_intake;

GRANT SELECT ON TABLE public.connections TO hapex_intake;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.connections TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(connection_id) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(provider) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(auth_kind) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(status) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(status_reason) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(scopes_granted_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(access_token_expires_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(created_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(updated_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(refresh_proven_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(health_failures) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(health_last_failure_at) ON TABLE public.connections TO hapex_definer;

GRANT SELECT(health_error_class) ON TABLE public.connections TO hapex_definer;

GRANT SELECT ON TABLE public.cost_events TO hapex_intake;
GRANT SELECT,INSERT ON TABLE public.cost_events TO hapex_agent;
GRANT DELETE ON TABLE public.cost_events TO hapex_definer;

GRANT SELECT(client_id) ON TABLE public.cost_events TO hapex_definer;

GRANT SELECT(cost_event_id) ON TABLE public.cost_events TO hapex_definer;

GRANT SELECT(amount_microusd) ON TABLE public.cost_events TO hapex_definer;

GRANT SELECT(occurred_at) ON TABLE public.cost_events TO hapex_definer;

GRANT INSERT ON TABLE public.credential_access TO hapex_agent;
GRANT SELECT ON TABLE public.credential_access TO hapex_intake;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.credentials TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.credentials TO hapex_intake;
GRANT SELECT(client_id) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(credential_id) ON TABLE public.credentials TO hapex_intake;
GRANT SELECT(credential_id) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(connection_id) ON TABLE public.credentials TO hapex_intake;
GRANT SELECT(connection_id) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(purpose) ON TABLE public.credentials TO hapex_intake;
GRANT SELECT(purpose) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(key_id) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(revision) ON TABLE public.credentials TO hapex_definer;

GRANT SELECT(created_at) ON TABLE public.credentials TO hapex_intake;

GRANT SELECT(updated_at) ON TABLE public.credentials TO hapex_intake;

GRANT SELECT ON TABLE public.hapex_migrations TO hapex_intake;
GRANT SELECT ON TABLE public.hapex_migrations TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.login_throttle TO hapex_intake;

GRANT SELECT ON TABLE public.monthly_costs TO hapex_intake;
GRANT SELECT ON TABLE public.monthly_costs TO hapex_agent;
GRANT SELECT,INSERT,UPDATE ON TABLE public.monthly_costs TO hapex_definer;

GRANT SELECT ON TABLE public.notifications TO hapex_agent;
GRANT SELECT ON TABLE public.notifications TO hapex_intake;
GRANT INSERT ON TABLE public.notifications TO hapex_definer;

GRANT SELECT(client_id) ON TABLE public.notifications TO hapex_definer;

GRANT SELECT(notification_id) ON TABLE public.notifications TO hapex_definer;

GRANT SELECT(created_at) ON TABLE public.notifications TO hapex_definer;

GRANT UPDATE(email_status) ON TABLE public.notifications TO hapex_agent;
GRANT SELECT(email_status) ON TABLE public.notifications TO hapex_definer;

GRANT UPDATE(email_attempts) ON TABLE public.notifications TO hapex_agent;

GRANT UPDATE(emailed_at) ON TABLE public.notifications TO hapex_agent;

GRANT SELECT,INSERT,DELETE ON TABLE public.oauth_states TO hapex_intake;
GRANT DELETE ON TABLE public.oauth_states TO hapex_definer;

GRANT SELECT(expires_at) ON TABLE public.oauth_states TO hapex_definer;

GRANT SELECT,INSERT,DELETE ON TABLE public.passkey_challenges TO hapex_agent;

GRANT SELECT,INSERT,DELETE ON TABLE public.passkey_sign_in_challenges TO hapex_definer;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.poll_seen TO hapex_agent;
GRANT DELETE ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT(client_id) ON TABLE public.poll_seen TO hapex_intake;
GRANT SELECT(client_id) ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT(automation_id) ON TABLE public.poll_seen TO hapex_intake;
GRANT SELECT(automation_id) ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT(item_key) ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT(seen_at) ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT(started_at) ON TABLE public.poll_seen TO hapex_intake;
GRANT SELECT(started_at) ON TABLE public.poll_seen TO hapex_definer;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.poll_states TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.procrastinate_events TO hapex_agent;
GRANT INSERT ON TABLE public.procrastinate_events TO hapex_definer;

GRANT SELECT,USAGE ON SEQUENCE public.procrastinate_events_id_seq TO hapex_agent;
GRANT USAGE ON SEQUENCE public.procrastinate_events_id_seq TO hapex_definer;

GRANT SELECT,USAGE ON SEQUENCE public.procrastinate_jobs_id_seq TO hapex_agent;
GRANT USAGE ON SEQUENCE public.procrastinate_jobs_id_seq TO hapex_definer;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.procrastinate_periodic_defers TO hapex_agent;

GRANT SELECT,USAGE ON SEQUENCE public.procrastinate_periodic_defers_id_seq TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.procrastinate_workers TO hapex_agent;

GRANT SELECT,USAGE ON SEQUENCE public.procrastinate_workers_id_seq TO hapex_agent;

GRANT SELECT,INSERT,DELETE ON TABLE public.recovery_codes TO hapex_intake;
GRANT SELECT ON TABLE public.recovery_codes TO hapex_agent;

GRANT UPDATE(used_at) ON TABLE public.recovery_codes TO hapex_intake;
GRANT UPDATE(used_at) ON TABLE public.recovery_codes TO hapex_agent;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.run_steps TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.run_steps TO hapex_intake;
GRANT SELECT(client_id) ON TABLE public.run_steps TO hapex_definer;

GRANT SELECT(run_id) ON TABLE public.run_steps TO hapex_intake;
GRANT SELECT(run_id) ON TABLE public.run_steps TO hapex_definer;

GRANT SELECT(step_index) ON TABLE public.run_steps TO hapex_intake;
GRANT SELECT(step_index) ON TABLE public.run_steps TO hapex_definer;

GRANT SELECT(capability) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(status) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(attempt_count) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(started_at) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(finished_at) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(duration_ms) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(error_class) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(safe_message) ON TABLE public.run_steps TO hapex_intake;

GRANT SELECT(counts) ON TABLE public.run_steps TO hapex_intake;

GRANT UPDATE(output_ciphertext) ON TABLE public.run_steps TO hapex_definer;

GRANT UPDATE(output_nonce) ON TABLE public.run_steps TO hapex_definer;

GRANT SELECT(output_key_id),UPDATE(output_key_id) ON TABLE public.run_steps TO hapex_definer;

GRANT SELECT ON TABLE public.runs TO hapex_intake;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.runs TO hapex_agent;
GRANT DELETE ON TABLE public.runs TO hapex_definer;

GRANT SELECT(client_id) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(run_id) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(automation_id) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(status) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(error_class) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(queued_at) ON TABLE public.runs TO hapex_definer;

GRANT SELECT(finished_at) ON TABLE public.runs TO hapex_definer;

GRANT DELETE ON TABLE public.sessions TO hapex_intake;
GRANT SELECT,DELETE ON TABLE public.sessions TO hapex_definer;
GRANT DELETE ON TABLE public.sessions TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.sessions TO hapex_intake;
GRANT INSERT(client_id) ON TABLE public.sessions TO hapex_definer;
GRANT SELECT(client_id) ON TABLE public.sessions TO hapex_agent;

GRANT INSERT(session_hash) ON TABLE public.sessions TO hapex_definer;

GRANT SELECT(user_id) ON TABLE public.sessions TO hapex_intake;
GRANT INSERT(user_id) ON TABLE public.sessions TO hapex_definer;
GRANT SELECT(user_id) ON TABLE public.sessions TO hapex_agent;

GRANT SELECT(created_at) ON TABLE public.sessions TO hapex_intake;

GRANT SELECT(last_seen_at) ON TABLE public.sessions TO hapex_intake;
GRANT UPDATE(last_seen_at) ON TABLE public.sessions TO hapex_definer;

GRANT SELECT(expires_at) ON TABLE public.sessions TO hapex_intake;
GRANT INSERT(expires_at),UPDATE(expires_at) ON TABLE public.sessions TO hapex_definer;

GRANT SELECT(device) ON TABLE public.sessions TO hapex_intake;
GRANT INSERT(device) ON TABLE public.sessions TO hapex_definer;

GRANT SELECT,INSERT,DELETE ON TABLE public.sign_in_tickets TO hapex_agent;

GRANT UPDATE(attempts) ON TABLE public.sign_in_tickets TO hapex_agent;

GRANT SELECT,INSERT,DELETE ON TABLE public.user_passkeys TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.user_passkeys TO hapex_intake;

GRANT SELECT(passkey_id) ON TABLE public.user_passkeys TO hapex_intake;

GRANT SELECT(user_id) ON TABLE public.user_passkeys TO hapex_intake;

GRANT UPDATE(sign_count) ON TABLE public.user_passkeys TO hapex_agent;

GRANT SELECT(label) ON TABLE public.user_passkeys TO hapex_intake;

GRANT SELECT(created_at) ON TABLE public.user_passkeys TO hapex_intake;

GRANT SELECT(last_used_at) ON TABLE public.user_passkeys TO hapex_intake;
GRANT UPDATE(last_used_at) ON TABLE public.user_passkeys TO hapex_agent;

GRANT DELETE ON TABLE public.user_totp TO hapex_intake;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.user_totp TO hapex_agent;

GRANT SELECT(client_id) ON TABLE public.user_totp TO hapex_intake;
GRANT SELECT(client_id) ON TABLE public.user_totp TO hapex_definer;

GRANT SELECT(user_id) ON TABLE public.user_totp TO hapex_intake;
GRANT SELECT(user_id) ON TABLE public.user_totp TO hapex_definer;

GRANT SELECT(key_id) ON TABLE public.user_totp TO hapex_definer;

GRANT SELECT(confirmed_at) ON TABLE public.user_totp TO hapex_intake;
GRANT SELECT(confirmed_at) ON TABLE public.user_totp TO hapex_agent;

GRANT SELECT(created_at) ON TABLE public.user_totp TO hapex_intake;

GRANT DELETE ON TABLE public.users TO hapex_intake;

GRANT SELECT(client_id),INSERT(client_id) ON TABLE public.users TO hapex_definer;
GRANT SELECT(client_id) ON TABLE public.users TO hapex_intake;
GRANT SELECT(client_id) ON TABLE public.users TO hapex_agent;

GRANT SELECT(user_id) ON TABLE public.users TO hapex_definer;
GRANT SELECT(user_id) ON TABLE public.users TO hapex_intake;
GRANT SELECT(user_id) ON TABLE public.users TO hapex_agent;

GRANT SELECT(email),INSERT(email),UPDATE(email) ON TABLE public.users TO hapex_definer;
GRANT SELECT(email) ON TABLE public.users TO hapex_intake;
GRANT SELECT(email) ON TABLE public.users TO hapex_agent;

GRANT SELECT(password_hash),INSERT(password_hash),UPDATE(password_hash) ON TABLE public.users TO hapex_definer;
GRANT SELECT(password_hash),UPDATE(password_hash) ON TABLE public.users TO hapex_agent;

GRANT SELECT(password_changed_at) ON TABLE public.users TO hapex_intake;
GRANT SELECT(password_changed_at),UPDATE(password_changed_at) ON TABLE public.users TO hapex_agent;
GRANT UPDATE(password_changed_at) ON TABLE public.users TO hapex_definer;

GRANT SELECT(created_at) ON TABLE public.users TO hapex_definer;
GRANT SELECT(created_at) ON TABLE public.users TO hapex_intake;

GRANT SELECT(email_verified_at),UPDATE(email_verified_at) ON TABLE public.users TO hapex_intake;
GRANT SELECT(email_verified_at),INSERT(email_verified_at),UPDATE(email_verified_at) ON TABLE public.users TO hapex_definer;

GRANT SELECT(role),UPDATE(role) ON TABLE public.users TO hapex_intake;
GRANT SELECT(role),INSERT(role) ON TABLE public.users TO hapex_definer;

GRANT SELECT ON TABLE public.vault_key_usage TO hapex_agent;
GRANT SELECT,INSERT ON TABLE public.vault_key_usage TO hapex_definer;

GRANT UPDATE(encryptions) ON TABLE public.vault_key_usage TO hapex_definer;

GRANT UPDATE(last_used_at) ON TABLE public.vault_key_usage TO hapex_definer;

GRANT SELECT,INSERT,DELETE ON TABLE public.webhook_reveals TO hapex_intake;
