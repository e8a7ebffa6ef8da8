-- Service roles belong to no other role: a membership in hapex_definer (or the owner) would
-- let its policies and privileges apply inside every tenant transaction. The services also
-- refuse to start when their role is a member of anything (shared.db.pool).

DO $$
DECLARE
    m record;
BEGIN
    FOR m IN
        SELECT g.rolname AS granted, r.rolname AS member
        FROM pg_auth_members am
        JOIN pg_roles r ON r.oid = am.member
        JOIN pg_roles g ON g.oid = am.roleid
        WHERE r.rolname IN ('hapex_intake', 'hapex_agent')
    LOOP
        EXECUTE format('REVOKE %I FROM %I', m.granted, m.member);
    END LOOP;
END
$$;
