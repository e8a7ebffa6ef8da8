-- Passkeys (WebAuthn): a second factor, or a sign-in without the password. Nothing here is secret:
-- a passkey's private key never leaves the person's device; Hapex keeps its credential id, its
-- public key (COSE), the authenticator's signature counter and the transports the browser named,
-- with the person's label and times. The agent verifies every ceremony and alone writes these
-- rows; the intake sees which passkeys a user has (labels and times) to list them.
CREATE TABLE user_passkeys (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    passkey_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    credential_id bytea NOT NULL CHECK (length(credential_id) BETWEEN 16 AND 1023),
    public_key bytea NOT NULL CHECK (length(public_key) BETWEEN 16 AND 2048),
    sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports text[] NOT NULL DEFAULT '{}' CHECK (cardinality(transports) <= 8),
    label text NOT NULL CHECK (length(label) BETWEEN 1 AND 60),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (client_id, passkey_id),
    UNIQUE (client_id, credential_id),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);
CREATE INDEX user_passkeys_user_idx ON user_passkeys (client_id, user_id);

-- A challenge handed to a signed-in user's browser (to register a passkey) or to a user whose
-- password was right (a passkey as the second factor, or to remove one): SHA-256 of it only,
-- bound to the client, the user and the purpose, good once for five minutes.
CREATE TABLE passkey_challenges (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    challenge_hash bytea NOT NULL CHECK (length(challenge_hash) = 32),
    user_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('register', 'second_factor')),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '5 minutes',
    PRIMARY KEY (client_id, challenge_hash),
    FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, user_id) ON DELETE CASCADE
);

ALTER TABLE user_passkeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_passkeys FORCE ROW LEVEL SECURITY;
ALTER TABLE passkey_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkey_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_passkeys
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON passkey_challenges
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));
GRANT SELECT (client_id, passkey_id, user_id, label, created_at, last_used_at) ON user_passkeys TO hapex_intake;
GRANT SELECT, INSERT, UPDATE (sign_count, last_used_at), DELETE ON user_passkeys TO hapex_agent;
GRANT SELECT, INSERT, DELETE ON passkey_challenges TO hapex_agent;

-- A sign-in with a passkey instead of the password starts before anyone says who they are, so its
-- challenge belongs to no client yet. These rows hold a hash and an expiry, nothing else; neither
-- service role can read or write them except through the two functions below.
CREATE TABLE passkey_sign_in_challenges (
    challenge_hash bytea PRIMARY KEY CHECK (length(challenge_hash) = 32),
    expires_at timestamptz NOT NULL
);
CREATE INDEX passkey_sign_in_challenges_expiry_idx ON passkey_sign_in_challenges (expires_at);
ALTER TABLE passkey_sign_in_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkey_sign_in_challenges FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON passkey_sign_in_challenges TO hapex_definer;
CREATE POLICY definer_sign_in_challenges ON passkey_sign_in_challenges TO hapex_definer
    USING (true) WITH CHECK (true);

-- A new sign-in challenge, good for five minutes from now (the caller chooses only its hash);
-- expired ones are swept on the way.
CREATE FUNCTION hapex_issue_passkey_sign_in_challenge(p_challenge_hash bytea)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    DELETE FROM public.passkey_sign_in_challenges WHERE expires_at < now();
    INSERT INTO public.passkey_sign_in_challenges (challenge_hash, expires_at)
    VALUES (p_challenge_hash, now() + interval '5 minutes')
    $$;

-- Spend one sign-in challenge by its exact hash: true once, while it is live; false otherwise.
CREATE FUNCTION hapex_spend_passkey_sign_in_challenge(p_challenge_hash bytea)
    RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    WITH spent AS (
        DELETE FROM public.passkey_sign_in_challenges
        WHERE challenge_hash = p_challenge_hash
        RETURNING expires_at
    )
    SELECT coalesce((SELECT expires_at > now() FROM spent), false)
    $$;

ALTER FUNCTION hapex_issue_passkey_sign_in_challenge(bytea) OWNER TO hapex_definer;
ALTER FUNCTION hapex_spend_passkey_sign_in_challenge(bytea) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_issue_passkey_sign_in_challenge(bytea),
    hapex_spend_passkey_sign_in_challenge(bytea) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_issue_passkey_sign_in_challenge(bytea),
    hapex_spend_passkey_sign_in_challenge(bytea) TO hapex_agent;

-- Every passkey added or removed is emailed, as the other factor changes are.
ALTER TABLE account_emails DROP CONSTRAINT account_emails_kind_check;
ALTER TABLE account_emails ADD CONSTRAINT account_emails_kind_check
    CHECK (kind IN ('verify_email', 'already_registered', 'reset_password', 'password_changed',
                    'second_factor_on', 'second_factor_off', 'invitation', 'invitation_taken',
                    'verify_new_email', 'email_changed', 'passkey_added', 'passkey_removed'));
