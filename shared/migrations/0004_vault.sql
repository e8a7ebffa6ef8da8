-- The credential vault: every write bumps a row's revision, encryptions are counted per
-- key, and the agent's two cross-client needs (a census of key ids at start-up, the
-- batches of `hapex credentials rotate`) go through narrow SECURITY DEFINER functions
-- that return ids and key ids only, never ciphertext.

-- Any change to a credential row bumps its revision, whoever writes it, so that a
-- compare-and-swap on revision (key rotation) cannot overwrite a newer value.
CREATE FUNCTION hapex_credentials_bump_revision()
    RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    BEGIN
        NEW.revision := OLD.revision + 1;
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$;
CREATE TRIGGER credentials_bump_revision BEFORE UPDATE ON credentials
    FOR EACH ROW EXECUTE FUNCTION hapex_credentials_bump_revision();
REVOKE EXECUTE ON FUNCTION hapex_credentials_bump_revision() FROM PUBLIC;

-- How many times each key has encrypted: AES-GCM with random 96-bit nonces must stay
-- under 2^32 encryptions per key (NIST SP 800-38D, 8.3). No customer data here.
CREATE TABLE vault_key_usage (
    key_id text PRIMARY KEY CHECK (key_id ~ '^k1:[0-9a-f]{16}$'),
    encryptions bigint NOT NULL DEFAULT 0 CHECK (encryptions >= 0),
    first_used_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON vault_key_usage TO hapex_agent;
GRANT SELECT, INSERT, UPDATE (encryptions, last_used_at) ON vault_key_usage TO hapex_definer;

-- The agent can only add to a count, never lower or reset one.
CREATE FUNCTION hapex_vault_count_encryptions(p_key_id text, p_count integer)
    RETURNS bigint
    LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    INSERT INTO public.vault_key_usage AS u (key_id, encryptions)
    VALUES (p_key_id, greatest(p_count, 1))
    ON CONFLICT (key_id) DO UPDATE
    SET encryptions = u.encryptions + EXCLUDED.encryptions, last_used_at = now()
    RETURNING u.encryptions
    $$;

-- Start-up: how many credential rows each key id holds, across clients.
GRANT SELECT (client_id, credential_id, key_id, revision) ON credentials TO hapex_definer;
CREATE POLICY definer_vault_key_ids ON credentials FOR SELECT TO hapex_definer USING (true);

CREATE FUNCTION hapex_vault_key_census()
    RETURNS TABLE (key_id text, credentials bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT c.key_id, count(*) FROM public.credentials c GROUP BY c.key_id ORDER BY 1 $$;

-- Rotation: the next rows (by credential_id) not under the primary key; ids only. The
-- agent then reads and rewrites each row in its own client's tenant transaction.
CREATE FUNCTION hapex_vault_rotation_batch(p_primary_key_id text, p_after uuid, p_limit integer)
    RETURNS TABLE (client_id uuid, credential_id uuid, key_id text, revision integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT c.client_id, c.credential_id, c.key_id, c.revision
    FROM public.credentials c
    WHERE c.key_id <> p_primary_key_id
      AND (p_after IS NULL OR c.credential_id > p_after)
    ORDER BY c.credential_id
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION hapex_vault_count_encryptions(text, integer) OWNER TO hapex_definer;
ALTER FUNCTION hapex_vault_key_census() OWNER TO hapex_definer;
ALTER FUNCTION hapex_vault_rotation_batch(text, uuid, integer) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_vault_count_encryptions(text, integer), hapex_vault_key_census(),
    hapex_vault_rotation_batch(text, uuid, integer) FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_vault_count_encryptions(text, integer), hapex_vault_key_census(),
    hapex_vault_rotation_batch(text, uuid, integer) TO hapex_agent;
