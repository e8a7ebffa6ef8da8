-- insert_state --
-- Record a pending authorization request for this client and session.
INSERT INTO oauth_states (client_id, state_hash, session_hash, provider, connection_id,
                          requested_scopes, redirect_uri, issuer, expires_at)
VALUES (%(client_id)s, %(state_hash)s, %(session_hash)s, %(provider)s, %(connection_id)s,
        %(requested_scopes)s, %(redirect_uri)s, %(issuer)s, now() + make_interval(secs => %(lifetime_seconds)s))

-- take_state --
-- Consume a pending request: delete it and return it, so a replayed state finds nothing.
DELETE FROM oauth_states
WHERE state_hash = %(state_hash)s
RETURNING session_hash, provider, connection_id, requested_scopes, redirect_uri, issuer,
          expires_at > now() AS fresh
