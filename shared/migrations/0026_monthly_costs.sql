-- A year of records (issue 20), the costs: a monthly rollup of cost events.
--
-- The costs page (12 months by source; this month by source, provider and model) and the check
-- of the month's spend before every run summed the client's cost events: 100,000 a year for a
-- big client, a million at the issue's scale. monthly_costs holds, per client, calendar month
-- (UTC), source, provider and model, the sums of its cost events; those three queries read it.
--
-- In step with cost_events: every INSERT into cost_events adds its rows' sums here in the same
-- statement (an AFTER INSERT trigger for each statement, over its transition table, one upsert;
-- two transactions adding to the same row both count: the second's ON CONFLICT DO UPDATE waits
-- for the first to commit and adds to the row it committed). A cost event is never updated or
-- deleted by a service (the agent's UPDATE and DELETE on cost_events are revoked below).
-- COPY runs the trigger too; only a load with session_replication_role = replica (the year
-- benchmark) skips it and rebuilds the rollup afterwards as the backfill below does.
--
-- The retention prune deletes old cost events and leaves monthly_costs alone: it is the
-- client's spending history, sums without a run or a step named, kept as long as the client.
-- It goes with the client (ON DELETE CASCADE) and is in the client's data export.
--
-- The budget notice of migration 0011 (80% of the month's budget spent), which summed the month's
-- cost events again for every priced one, is now worked out by the same trigger from the sums.
CREATE TABLE monthly_costs (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    -- The month's first day, UTC.
    month date NOT NULL CHECK (extract(day FROM month) = 1),
    source text NOT NULL,
    provider text NOT NULL,
    model text,
    events bigint NOT NULL CHECK (events >= 0),
    calls bigint NOT NULL CHECK (calls >= 0),
    input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
    cache_creation_input_tokens bigint NOT NULL CHECK (cache_creation_input_tokens >= 0),
    cache_read_input_tokens bigint NOT NULL CHECK (cache_read_input_tokens >= 0),
    amount_microusd bigint NOT NULL CHECK (amount_microusd >= 0),
    -- model is NULL for provider calls: one row for them too.
    CONSTRAINT monthly_costs_key UNIQUE NULLS NOT DISTINCT (client_id, month, source, provider, model)
);

ALTER TABLE monthly_costs ENABLE ROW LEVEL SECURITY;
ALTER TABLE monthly_costs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON monthly_costs
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
-- The intake's costs page and the agent's spend check read it; only the trigger writes it.
GRANT SELECT ON monthly_costs TO hapex_intake, hapex_agent;

-- The trigger adds what the inserted rows say, and nothing else: those rows passed cost_events'
-- own policy as whoever inserted them, so its writes need no tenant policy of their own.
GRANT SELECT, INSERT, UPDATE ON monthly_costs TO hapex_definer;
CREATE POLICY definer_roll_up_costs_select ON monthly_costs FOR SELECT TO hapex_definer USING (true);
CREATE POLICY definer_roll_up_costs_insert ON monthly_costs FOR INSERT TO hapex_definer WITH CHECK (true);
CREATE POLICY definer_roll_up_costs_update ON monthly_costs FOR UPDATE TO hapex_definer
    USING (true) WITH CHECK (true);

CREATE FUNCTION hapex_roll_up_cost_events()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
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
ALTER FUNCTION hapex_roll_up_cost_events() OWNER TO hapex_definer;
REVOKE ALL ON FUNCTION hapex_roll_up_cost_events() FROM PUBLIC;

CREATE TRIGGER cost_events_roll_up AFTER INSERT ON cost_events
    REFERENCING NEW TABLE AS new_cost_events
    FOR EACH STATEMENT EXECUTE FUNCTION hapex_roll_up_cost_events();
-- The budget notice is part of it (above); its own trigger, which summed the month's cost events
-- for each priced one, goes.
DROP TRIGGER cost_events_notice_budget ON cost_events;
DROP FUNCTION hapex_notice_budget_nearly_used();

-- Cost events are written once: the rollup counts inserts only. (The prune deletes as
-- hapex_definer; a client's deletion and a run's, which unlinks its events, run as the owner.)
REVOKE UPDATE, DELETE ON cost_events FROM hapex_agent;

-- The backfill, from every cost event there is. CREATE TRIGGER above took a lock that no INSERT
-- into cost_events can share: every insert before it has committed and is counted here, every
-- one after it waits for this migration's commit and then runs the trigger.
INSERT INTO monthly_costs
    (client_id, month, source, provider, model, events, calls, input_tokens, output_tokens,
     cache_creation_input_tokens, cache_read_input_tokens, amount_microusd)
SELECT client_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, source, provider, model, count(*),
       coalesce(sum(calls), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cache_creation_input_tokens), 0), coalesce(sum(cache_read_input_tokens), 0),
       coalesce(sum(amount_microusd), 0)
FROM cost_events
GROUP BY 1, 2, 3, 4, 5;
