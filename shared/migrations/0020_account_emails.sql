-- Email that reaches a person: verified addresses and account emails (verification, password
-- reset, "you already have an account", "your password was changed").
--
-- The intake writes an account email as a row (which user, which kind, how long a link in it
-- may live); an agent worker sends it through the SMTP settings the notices use. A link's token
-- is drawn by the worker at send time, and only its SHA-256 is written back: the token exists in
-- the email and nowhere else, so neither a database reader nor the intake's role can use a link
-- it did not receive. A row says nothing but ids, a kind and times; the address is read from
-- users when the email goes out.

-- Accounts made before this migration keep working as they did: their addresses count as verified.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;
GRANT UPDATE (email_verified_at) ON users TO hapex_intake;

CREATE TABLE account_emails (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    email_id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('verify_email', 'already_registered', 'reset_password',
                                       'password_changed', 'second_factor_on', 'second_factor_off',
                                       'invitation', 'invitation_taken', 'verify_new_email',
                                       'email_changed')),
    -- Where it goes when that is not the user's address: the new address to confirm (verify_new_email),
    -- or the old one, told of the change (email_changed).
    to_address citext CHECK (to_address IS NULL OR length(to_address) BETWEEN 3 AND 254),
    -- Where the link in the email points, before its token (the intake's own URL for the kind).
    link_base text CHECK (link_base IS NULL OR (link_base LIKE 'http%' AND length(link_base) <= 300)),
    -- SHA-256 of the link's token; NULL until the worker has drawn it and sent the email.
    token_hash bytea UNIQUE CHECK (token_hash IS NULL OR length(token_hash) = 32),
    link_ttl interval CHECK (link_ttl IS NULL OR link_ttl BETWEEN interval '1 minute' AND interval '7 days'),
    expires_at timestamptz,
    used_at timestamptz,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'no_smtp')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    CHECK ((link_base IS NULL) = (link_ttl IS NULL)),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
CREATE INDEX account_emails_client_user_idx ON account_emails (client_id, user_id, kind, created_at);
CREATE INDEX account_emails_pending_idx ON account_emails (created_at) WHERE status = 'pending';

ALTER TABLE account_emails ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_emails FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_emails
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));

-- The intake asks for an email and uses (or voids) a link; it never sees or sets a token.
GRANT SELECT (client_id, email_id, user_id, kind, expires_at, used_at, status, created_at, sent_at, to_address),
      INSERT (client_id, user_id, kind, link_base, link_ttl, to_address), DELETE
    ON account_emails TO hapex_intake;
GRANT UPDATE (used_at) ON account_emails TO hapex_intake;
-- The agent sends them: it draws the token and records the outcome.
GRANT SELECT, UPDATE (token_hash, expires_at, status, attempts, sent_at) ON account_emails TO hapex_agent;

-- Pre-tenant: the account email a link's token belongs to (a link is opened without a session).
GRANT SELECT (client_id, email_id, user_id, kind, token_hash, expires_at, used_at, status, created_at)
    ON account_emails TO hapex_definer;
CREATE POLICY definer_link_lookup ON account_emails FOR SELECT TO hapex_definer USING (true);
CREATE FUNCTION hapex_find_account_link(p_token_hash bytea)
    RETURNS TABLE (client_id uuid, email_id uuid, user_id uuid, kind text, live boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT e.client_id, e.email_id, e.user_id, e.kind,
                 e.used_at IS NULL AND e.expires_at > now()
          FROM public.account_emails e
          WHERE e.token_hash = p_token_hash AND p_token_hash IS NOT NULL $$;

-- Pending account emails across clients, ids only, for the sweep that retries what failed.
CREATE POLICY definer_pending_account_emails ON account_emails FOR SELECT TO hapex_definer USING (true);
CREATE FUNCTION hapex_pending_account_emails(p_limit integer)
    RETURNS TABLE (client_id uuid, email_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT e.client_id, e.email_id FROM public.account_emails e
          WHERE e.status = 'pending' ORDER BY e.created_at LIMIT least(greatest(p_limit, 0), 1000) $$;

-- The address an account email goes to: only inside that client's own tenant transaction.
CREATE FUNCTION hapex_account_email_recipient(p_client_id uuid, p_user_id uuid)
    RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT u.email::text FROM public.users u
          WHERE u.client_id = p_client_id AND u.user_id = p_user_id
            AND p_client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid) $$;

-- A new account email wakes a worker at once (procrastinate's NOTIFY) with its ids only.
GRANT INSERT, SELECT (id) ON procrastinate_jobs TO hapex_definer;
GRANT INSERT ON procrastinate_events TO hapex_definer;
GRANT USAGE ON SEQUENCE procrastinate_jobs_id_seq, procrastinate_events_id_seq TO hapex_definer;
GRANT EXECUTE ON FUNCTION procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[]) TO hapex_definer;
CREATE FUNCTION hapex_defer_account_email()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    BEGIN
        PERFORM public.procrastinate_defer_jobs_v1(ARRAY[ROW(
            'maintenance', 'hapex:send_account_email', 0, NULL, NULL,
            jsonb_build_object('client_id', NEW.client_id::text, 'email_id', NEW.email_id::text),
            NULL)::public.procrastinate_job_to_defer_v1]);
        RETURN NULL;
    END
    $$;
CREATE TRIGGER account_emails_defer AFTER INSERT ON account_emails
    FOR EACH ROW EXECUTE FUNCTION hapex_defer_account_email();

ALTER FUNCTION hapex_find_account_link(bytea) OWNER TO hapex_definer;
ALTER FUNCTION hapex_pending_account_emails(integer) OWNER TO hapex_definer;
ALTER FUNCTION hapex_account_email_recipient(uuid, uuid) OWNER TO hapex_definer;
ALTER FUNCTION hapex_defer_account_email() OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_find_account_link(bytea), hapex_pending_account_emails(integer),
    hapex_account_email_recipient(uuid, uuid), hapex_defer_account_email() FROM PUBLIC, hapex_agent, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_find_account_link(bytea) TO hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_pending_account_emails(integer), hapex_account_email_recipient(uuid, uuid)
    TO hapex_agent;

-- A second factor: TOTP (RFC 6238). The secret is a credential, so the agent's vault seals it
-- (AES-256-GCM under a per-client subkey of the credential key, bound to client and user) and
-- only the agent opens it, to check a code: the intake, which may not hold the key, never reads
-- the ciphertext. last_step is the time step of the last code accepted: a code is good once.
CREATE TABLE user_totp (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    user_id uuid NOT NULL,
    key_id text NOT NULL,
    nonce bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext bytea NOT NULL,
    confirmed_at timestamptz,
    last_step bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, user_id),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
-- Ten single-use codes for when the authenticator is lost: SHA-256 of each (80 random bits), nothing else.
CREATE TABLE recovery_codes (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    user_id uuid NOT NULL,
    code_hash bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, user_id, code_hash),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp FORCE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_totp
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON recovery_codes
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
-- The intake sees whether a user has a confirmed factor and may remove it (after a fresh proof);
-- the agent alone writes and reads the sealed secret.
GRANT SELECT (client_id, user_id, confirmed_at, created_at), DELETE ON user_totp TO hapex_intake;
GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp TO hapex_agent;
GRANT SELECT, INSERT, DELETE ON recovery_codes TO hapex_intake;
GRANT UPDATE (used_at) ON recovery_codes TO hapex_intake;

-- Team members: every user of a client is an owner (members, deleting the business) or a member
-- (automations, connections, runs). An invited person is a user whose password is unknown to
-- anyone until they follow the invitation's link and choose one.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'member'));
GRANT UPDATE (role) ON users TO hapex_intake;

-- Which kind of device a session was started on ("Firefox on Linux"), for the account page's list of
-- sessions: a label read from the User-Agent at sign-in, never the header itself or an address.
ALTER TABLE sessions ADD COLUMN device text NOT NULL DEFAULT 'Unknown device' CHECK (length(device) <= 60);
GRANT SELECT (device) ON sessions TO hapex_intake;
GRANT INSERT (device) ON sessions TO hapex_definer;
-- hapex_start_session (0016) with the device label; the intake still writes no session row itself.
CREATE FUNCTION hapex_start_session(p_client_id uuid, p_user_id uuid, p_session_hash bytea,
                                    p_idle interval, p_absolute interval, p_device text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    INSERT INTO public.sessions (client_id, session_hash, user_id, expires_at, device)
    VALUES (p_client_id, p_session_hash, p_user_id,
            now() + least(p_idle, p_absolute, interval '1 day', interval '30 days'), left(p_device, 60))
    $$;
ALTER FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval, text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval, text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval, text) TO hapex_intake;

-- An owner can require a second factor of everyone in the business: a user without one is walked
-- through enrolment before any other page opens.
ALTER TABLE clients ADD COLUMN require_second_factor boolean NOT NULL DEFAULT false;
GRANT UPDATE (require_second_factor) ON clients TO hapex_intake;

-- Changing one's address: the new address is set when its confirmation link is used.
GRANT UPDATE (email) ON users TO hapex_intake;
