-- OAuth consent in flight: one row per authorization request, single use, short-lived.
--
-- Only a SHA-256 of the state is stored (the state itself travels in the consent URL), and
-- no PKCE verifier at all: the intake derives it from the state with a keyed hash, so a
-- database reader holds nothing that completes an authorization.

CREATE TABLE oauth_states (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    state_hash bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    session_hash bytea NOT NULL REFERENCES sessions (session_hash) ON DELETE CASCADE,
    provider text NOT NULL,
    -- Set when the consent reconnects (or widens) an existing connection.
    connection_id uuid,
    requested_scopes text[] NOT NULL,
    redirect_uri text NOT NULL,
    issuer text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    FOREIGN KEY (client_id, connection_id)
        REFERENCES connections (client_id, connection_id) ON DELETE CASCADE
);
CREATE INDEX oauth_states_client_idx ON oauth_states (client_id, expires_at);
CREATE INDEX oauth_states_session_idx ON oauth_states (session_hash);

ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oauth_states
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));

GRANT SELECT, INSERT, DELETE ON oauth_states TO hapex_intake;
