-- Key rotation covers TOTP secrets: `hapex credentials rotate` re-seals them under the primary key
-- and the agent's start-up check counts them, so a retired key is dropped only once no sealed
-- secret is under it. Both see ids and key ids only, never a nonce or ciphertext.

-- The definer reads the ids and key id of every secret, nothing sealed.
GRANT SELECT (client_id, user_id, key_id) ON user_totp TO hapex_definer;
CREATE POLICY definer_vault_key_ids ON user_totp FOR SELECT TO hapex_definer USING (true);

-- Sealed TOTP secrets per key id across every client (ids and counts only).
CREATE FUNCTION hapex_vault_totp_key_census()
    RETURNS TABLE (key_id text, secrets bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT t.key_id, count(*) FROM public.user_totp t GROUP BY t.key_id ORDER BY 1
    $$;

-- Rotation: the next sealed TOTP secrets (by client, then user) not under the primary key; ids only.
CREATE FUNCTION hapex_vault_totp_rotation_batch(p_primary_key_id text, p_after_client uuid,
                                                p_after_user uuid, p_limit integer)
    RETURNS TABLE (client_id uuid, user_id uuid, key_id text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT t.client_id, t.user_id, t.key_id
    FROM public.user_totp t
    WHERE t.key_id <> p_primary_key_id
      AND (p_after_client IS NULL OR (t.client_id, t.user_id) > (p_after_client, p_after_user))
    ORDER BY t.client_id, t.user_id
    LIMIT least(greatest(p_limit, 1), 1000)
    $$;

ALTER FUNCTION hapex_vault_totp_key_census() OWNER TO hapex_definer;
ALTER FUNCTION hapex_vault_totp_rotation_batch(text, uuid, uuid, integer) OWNER TO hapex_definer;
REVOKE EXECUTE ON FUNCTION hapex_vault_totp_key_census(), hapex_vault_totp_rotation_batch(text, uuid, uuid, integer)
    FROM PUBLIC, hapex_intake;
GRANT EXECUTE ON FUNCTION hapex_vault_totp_key_census(), hapex_vault_totp_rotation_batch(text, uuid, uuid, integer)
    TO hapex_agent;
