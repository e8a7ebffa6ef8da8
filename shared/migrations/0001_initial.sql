-- The initial schema: clients and every customer table named on the security page.
--
-- Every customer table carries client_id (leading its indexes), row-level security is
-- enabled and forced on it, and one policy admits only the rows of the client set in the
-- transaction-local setting app.client_id. Service roles and grants: 0003_service_roles.sql.

CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE clients (
    client_id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    monthly_budget_microusd bigint CHECK (monthly_budget_microusd >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    email citext NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, user_id),
    UNIQUE (user_id)
);
-- One account per email address across all clients: a login must find one user.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE sessions (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    -- SHA-256 of the cookie value: a database reader cannot replay a session.
    session_hash bytea PRIMARY KEY CHECK (length(session_hash) = 32),
    user_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_client_user_idx ON sessions (client_id, user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE automations (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    automation_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'enabled', 'disabled', 'paused')),
    paused_reason text,
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    trigger jsonb NOT NULL DEFAULT '{"kind": "manual"}',
    steps jsonb NOT NULL DEFAULT '[]',
    store_outputs boolean NOT NULL DEFAULT false,
    next_run_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, automation_id),
    UNIQUE (automation_id)
);
CREATE INDEX automations_due_idx ON automations (next_run_at) WHERE status = 'enabled';

-- Every version an automation has had, so a run can say exactly what it ran.
CREATE TABLE automation_versions (
    client_id uuid NOT NULL,
    automation_id uuid NOT NULL,
    version integer NOT NULL,
    trigger jsonb NOT NULL,
    steps jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, automation_id, version),
    FOREIGN KEY (client_id, automation_id)
        REFERENCES automations (client_id, automation_id) ON DELETE CASCADE,
    FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE
);

CREATE TABLE connections (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    connection_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{1,40}$'),
    auth_kind text NOT NULL CHECK (auth_kind IN ('oauth2', 'api_key')),
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('pending', 'active', 'needs_reauth', 'revoked')),
    status_reason text,
    scopes_granted text[] NOT NULL DEFAULT '{}',
    scopes_granted_at timestamptz,
    account_label text,
    secret_hint text CHECK (secret_hint IS NULL OR length(secret_hint) <= 4),
    access_token_expires_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, connection_id),
    UNIQUE (connection_id)
);
CREATE INDEX connections_client_provider_idx ON connections (client_id, provider);

-- Ciphertext only; the agent service alone holds the key (see the vault).
CREATE TABLE credentials (
    client_id uuid NOT NULL,
    credential_id uuid NOT NULL DEFAULT gen_random_uuid(),
    connection_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('refresh_token', 'access_token', 'api_key')),
    key_id text NOT NULL,
    nonce bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext bytea NOT NULL,
    revision integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, credential_id),
    UNIQUE (credential_id),
    UNIQUE (client_id, connection_id, purpose),
    FOREIGN KEY (client_id, connection_id)
        REFERENCES connections (client_id, connection_id) ON DELETE CASCADE,
    FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE
);
CREATE INDEX credentials_key_id_idx ON credentials (key_id);

CREATE TABLE runs (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    run_id uuid NOT NULL DEFAULT gen_random_uuid(),
    automation_id uuid NOT NULL,
    automation_version integer NOT NULL,
    trigger_kind text NOT NULL CHECK (trigger_kind IN ('manual', 'schedule', 'webhook')),
    scheduled_for timestamptz,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error_class text,
    error_message text,
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (client_id, run_id),
    UNIQUE (run_id),
    FOREIGN KEY (client_id, automation_id)
        REFERENCES automations (client_id, automation_id) ON DELETE CASCADE
);
CREATE INDEX runs_client_queued_idx ON runs (client_id, queued_at DESC);
CREATE INDEX runs_client_automation_idx ON runs (client_id, automation_id, queued_at DESC);
-- A schedule slot produces one run, however many workers see it due.
CREATE UNIQUE INDEX runs_schedule_slot_key ON runs (client_id, automation_id, scheduled_for)
    WHERE trigger_kind = 'schedule';

-- Metadata only: status, timings, counts, an error class. Never contents.
CREATE TABLE run_steps (
    client_id uuid NOT NULL,
    run_id uuid NOT NULL,
    step_index integer NOT NULL CHECK (step_index >= 0),
    capability text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    attempt_count integer NOT NULL DEFAULT 0,
    idempotency_key text,
    started_at timestamptz,
    finished_at timestamptz,
    duration_ms integer,
    error_class text,
    safe_message text,
    counts jsonb NOT NULL DEFAULT '{}',
    output_ciphertext bytea,
    output_nonce bytea,
    output_key_id text,
    PRIMARY KEY (client_id, run_id, step_index),
    FOREIGN KEY (client_id, run_id) REFERENCES runs (client_id, run_id) ON DELETE CASCADE,
    FOREIGN KEY (client_id) REFERENCES clients ON DELETE CASCADE
);

CREATE TABLE cost_events (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    cost_event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    run_id uuid,
    step_index integer,
    source text NOT NULL CHECK (source IN ('llm', 'provider_call', 'chat')),
    provider text NOT NULL,
    model text,
    input_tokens integer CHECK (input_tokens >= 0),
    output_tokens integer CHECK (output_tokens >= 0),
    price_version text,
    amount_microusd bigint NOT NULL DEFAULT 0 CHECK (amount_microusd >= 0),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, cost_event_id),
    FOREIGN KEY (client_id, run_id) REFERENCES runs (client_id, run_id) ON DELETE CASCADE
);
CREATE INDEX cost_events_client_month_idx ON cost_events (client_id, occurred_at);

CREATE TABLE chat_messages (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    message_id uuid NOT NULL DEFAULT gen_random_uuid(),
    draft_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('client', 'assistant')),
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, message_id)
);
CREATE INDEX chat_messages_client_draft_idx ON chat_messages (client_id, draft_id, created_at);

-- Failed logins, keyed by a keyed hash of the email or address: no customer data here.
CREATE TABLE login_throttle (
    bucket bytea PRIMARY KEY CHECK (length(bucket) = 32),
    failures integer NOT NULL DEFAULT 0,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);

-- Row-level security on every table that carries client_id.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
    LOOP
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
