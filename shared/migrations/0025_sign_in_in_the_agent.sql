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

-- 3. Sign-in moves into the agent (docs/client-proof.md, "Who can start a session"). A compromised
--    intake could start a session (and so hold a proof) for any user: it read every password hash,
--    wrote them, added users to any client and called hapex_start_session with any ids. Now:
--    - only the agent reads a password hash (hapex_find_login) and starts a session, after checking
--      the password itself; a user with a second factor gets a pending sign-in ticket first, which
--      only the agent can check (random, kept as its SHA-256 in a table the intake cannot touch,
--      five minutes, once) and which the code must come with;
--    - a password is set only by the agent (knowing the current one) or with an email link's token
--      (hapex_set_password_by_link), whose hash only the worker sets;
--    - users join an existing client only through an owner's live session and with no password
--      anyone knows (hapex_invite_member); sign-up creates a new client with its owner
--      (hapex_sign_up), never a user of an existing one;
--    - an address changes only with its verify_new_email link's token (hapex_change_email_by_link),
--      and an email goes to an address other than the user's own only for those two kinds, asked for
--      by the agent after it checked the password.

-- 3a. Password hashes and the start of a session are the agent's.
REVOKE EXECUTE ON FUNCTION hapex_find_login(text) FROM hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_find_login(text) TO hapex_agent;
REVOKE EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval),
    hapex_start_session(uuid, uuid, bytea, interval, interval, text) FROM hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_start_session(uuid, uuid, bytea, interval, interval),
    hapex_start_session(uuid, uuid, bytea, interval, interval, text) TO hapex_agent;

-- Which user has this address, without the hash: sign-up's "you already have an account" and
-- "forgot your password" need only whom to email.
CREATE FUNCTION hapex_find_account(p_email text)
    RETURNS TABLE (client_id uuid, user_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT u.client_id, u.user_id FROM public.users u WHERE u.email = p_email::public.citext $$;
ALTER FUNCTION hapex_find_account(text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_find_account(text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_find_account(text) TO hapex_intake;

REVOKE SELECT, INSERT, UPDATE ON users FROM hapex_intake;
GRANT SELECT (client_id, user_id, email, password_changed_at, created_at, email_verified_at, role) ON users
    TO hapex_intake;
GRANT UPDATE (email_verified_at, role) ON users TO hapex_intake;
-- The agent checks and changes one user's password in that client's tenant transaction.
GRANT SELECT (client_id, user_id, email, password_hash, password_changed_at), UPDATE (password_hash, password_changed_at) ON users
    TO hapex_agent;
-- ... ends a user's other sessions when the password changes, and spends a recovery code at sign-in.
GRANT SELECT (client_id, user_id), DELETE ON sessions TO hapex_agent;
GRANT SELECT, UPDATE (used_at) ON recovery_codes TO hapex_agent;
GRANT SELECT (confirmed_at) ON user_totp TO hapex_agent;
GRANT INSERT (client_id, user_id, kind, link_base, link_ttl, to_address), UPDATE (used_at) ON account_emails
    TO hapex_agent;

-- 3b. The pending sign-in ticket: the password was right, the code is still owed.
CREATE TABLE sign_in_tickets (
    client_id uuid NOT NULL,
    ticket_hash bytea NOT NULL CHECK (length(ticket_hash) = 32),
    user_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, ticket_hash),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
ALTER TABLE sign_in_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE sign_in_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sign_in_tickets
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
GRANT SELECT, INSERT, UPDATE (attempts), DELETE ON sign_in_tickets TO hapex_agent;

-- 3c. Sign-up: a new client and its owner, together; a client id already taken fails (never a user
--     added to an existing client).
GRANT INSERT (client_id, name) ON clients TO hapex_definer;
GRANT INSERT (client_id, email, password_hash, role, email_verified_at) ON users TO hapex_definer;
GRANT SELECT (role, email_verified_at) ON users TO hapex_definer;
CREATE POLICY definer_sign_up ON clients FOR INSERT TO hapex_definer WITH CHECK (true);
CREATE POLICY definer_add_user ON users FOR INSERT TO hapex_definer WITH CHECK (true);
CREATE FUNCTION hapex_sign_up(p_client_id uuid, p_name text, p_email text, p_password_hash text)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
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
    $$;
ALTER FUNCTION hapex_sign_up(uuid, text, text, text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_sign_up(uuid, text, text, text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_sign_up(uuid, text, text, text) TO hapex_intake;

-- An invited user of the client whose owner's live session this is, with no password yet (no
-- password matches '!no password yet'); the new user's id, or no row.
CREATE FUNCTION hapex_invite_member(p_session_secret text, p_email text, p_role text)
    RETURNS TABLE (client_id uuid, user_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    INSERT INTO public.users (client_id, email, password_hash, role, email_verified_at)
    SELECT s.client_id, p_email, '!no password yet', p_role, NULL
    FROM public.sessions s
    JOIN public.users o ON o.client_id = s.client_id AND o.user_id = s.user_id AND o.role = 'owner'
    WHERE s.session_hash = pg_catalog.sha256(pg_catalog.convert_to(p_session_secret, 'UTF8'))
      AND s.expires_at > now() AND s.created_at > now() - interval '30 days'
    RETURNING users.client_id, users.user_id
    $$;
ALTER FUNCTION hapex_invite_member(text, text, text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_invite_member(text, text, text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_invite_member(text, text, text) TO hapex_intake;

-- 3d. A password set with a reset or invitation link's token (the token itself: its hash is the
--     worker's alone), once, inside its lifetime: every session of the user ends, every other reset
--     and invitation link of theirs stops, and the address counts as confirmed.
GRANT SELECT (kind, user_id, used_at, expires_at, token_hash, to_address), UPDATE (used_at) ON account_emails
    TO hapex_definer;
GRANT INSERT (client_id, user_id, kind, to_address) ON account_emails TO hapex_definer;
CREATE POLICY definer_use_link ON account_emails FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_email_changed ON account_emails FOR INSERT TO hapex_definer
    WITH CHECK (kind = 'email_changed');
GRANT UPDATE (password_hash, password_changed_at, email, email_verified_at) ON users TO hapex_definer;
CREATE POLICY definer_set_password ON users FOR UPDATE TO hapex_definer USING (true) WITH CHECK (true);
CREATE FUNCTION hapex_set_password_by_link(p_token text, p_password_hash text)
    RETURNS TABLE (client_id uuid, user_id uuid, kind text, sessions_ended integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
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
    $$;
ALTER FUNCTION hapex_set_password_by_link(text, text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_set_password_by_link(text, text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_set_password_by_link(text, text) TO hapex_intake;

-- 3e. A new address, with its verify_new_email link's token: set once, and the old address told.
CREATE FUNCTION hapex_change_email_by_link(p_token text)
    RETURNS TABLE (client_id uuid, user_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
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
ALTER FUNCTION hapex_change_email_by_link(text) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_change_email_by_link(text) FROM PUBLIC, hapex_agent;
GRANT EXECUTE ON FUNCTION hapex_change_email_by_link(text) TO hapex_intake;

-- 3f. The intake asks for account emails to the user's own address only; a message to another
--     address (a new one to confirm, the old one told of a change) is asked by the agent after the
--     password, or by hapex_change_email_by_link.
REVOKE INSERT ON account_emails FROM hapex_intake;
GRANT INSERT (client_id, user_id, kind, link_base, link_ttl) ON account_emails TO hapex_intake;
ALTER TABLE account_emails ADD CONSTRAINT account_emails_to_address_kinds
    CHECK (to_address IS NULL OR kind IN ('verify_new_email', 'email_changed'));
