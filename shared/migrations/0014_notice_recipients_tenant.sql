-- The recipients of a client's notices: only in that client's own tenant transaction, so the
-- agent role cannot list another client's users' addresses by passing its id.
CREATE OR REPLACE FUNCTION hapex_notice_recipients(p_client_id uuid)
    RETURNS TABLE (email text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
    SELECT u.email::text FROM public.users u
    WHERE u.client_id = p_client_id
      AND p_client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid)
    ORDER BY u.created_at
    $$;
