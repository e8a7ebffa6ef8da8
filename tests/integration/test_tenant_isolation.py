"""Row-level security as an attacker inside one tenant's transaction would meet it."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from shared.db import Database, PermissionDenied, TenantViolation, tenant_transaction
from tests.factories import make_client, make_connection, make_session, make_user

SERVICE_ROLES = ("hapex_intake", "hapex_agent")


def test_every_table_with_client_id_has_row_security_enabled_and_forced(owner_conn):
    rows = owner_conn.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p
                 WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'
                   AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL
                   AND p.polcmd = '*' AND p.polpermissive) AS tenant_policies
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
        ORDER BY 1
        """
    ).fetchall()
    tables = {r[0] for r in rows}
    assert {"clients", "users", "sessions", "automations", "automation_versions", "connections",
            "credentials", "runs", "run_steps", "cost_events", "monthly_costs", "chat_messages"} <= tables
    for name, enabled, forced, policies in rows:
        assert enabled and forced, f"{name}: row-level security must be enabled and forced"
        assert policies == 1, f"{name}: needs the tenant_isolation policy with USING and WITH CHECK"


def test_every_table_with_client_id_leads_an_index_with_it(owner_conn):
    rows = owner_conn.execute(
        """
        SELECT c.relname,
               bool_or(a.attname = 'client_id') AS led_by_client
        FROM pg_class c
        JOIN pg_attribute ca ON ca.attrelid = c.oid AND ca.attname = 'client_id'
        JOIN pg_index i ON i.indrelid = c.oid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
        GROUP BY c.relname
        """
    ).fetchall()
    assert rows
    for name, led in rows:
        assert led, f"{name}: no index is led by client_id"


def test_service_roles_are_not_owners_superusers_or_bypassrls(owner_conn):
    for role in SERVICE_ROLES:
        row = owner_conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
            [role],
        ).fetchone()
        assert row == (False, False, False, False), role
        owned = owner_conn.execute(
            """SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
               WHERE r.rolname = %s AND c.relnamespace = 'public'::regnamespace""",
            [role],
        ).fetchone()
        assert owned == (0,), f"{role} owns relations"
        member_of = owner_conn.execute(
            """SELECT array_agg(b.rolname) FROM pg_auth_members m
               JOIN pg_roles r ON r.oid = m.member JOIN pg_roles b ON b.oid = m.roleid
               WHERE r.rolname = %s""",
            [role],
        ).fetchone()
        assert member_of == (None,), f"{role} inherits other roles: {member_of}"


def test_the_services_refuse_a_role_that_bypasses_row_security(database):
    owner = Database(database.owner_dsn).open()
    try:
        with pytest.raises(Exception, match="bypass"):
            owner.assert_role_is_confined()
    finally:
        owner.close()
    confined = Database(database.agent_dsn).open()
    try:
        confined.assert_role_is_confined()
    finally:
        confined.close()


@pytest.mark.parametrize("table", ["clients", "users", "automations", "connections"])
def test_a_client_sees_none_of_another_clients_rows(two_clients, intake_db, table):
    (a, *_), (b, *_) = two_clients
    with tenant_transaction(intake_db, a) as conn:
        rows = conn.execute(f"SELECT client_id FROM {table}").fetchall()  # noqa: S608
    assert rows and {r[0] for r in rows} == {a}
    with tenant_transaction(intake_db, a) as conn:
        hits = conn.execute(f"SELECT count(*) FROM {table} WHERE client_id = %s", [b]).fetchone()  # noqa: S608
    assert hits == (0,)


def test_a_client_cannot_update_or_delete_another_clients_rows(two_clients, intake_db, agent_db, owner_conn):
    (a, *_), (b, *_) = two_clients
    with tenant_transaction(intake_db, a) as conn:
        updated = conn.execute("UPDATE automations SET name = 'pwned' WHERE client_id = %s", [b]).rowcount
        deleted = conn.execute("DELETE FROM automations WHERE client_id = %s", [b]).rowcount
        deleted_clients = conn.execute("DELETE FROM clients WHERE client_id = %s", [b]).rowcount
    assert (updated, deleted, deleted_clients) == (0, 0, 0)
    with tenant_transaction(agent_db, a) as conn:
        assert conn.execute("UPDATE connections SET status = 'revoked' WHERE client_id = %s", [b]).rowcount == 0
        assert conn.execute("DELETE FROM connections WHERE client_id = %s", [b]).rowcount == 0
    counts = owner_conn.execute(
        "SELECT (SELECT count(*) FROM automations WHERE client_id = %(b)s AND name <> 'pwned'),"
        "       (SELECT count(*) FROM connections WHERE client_id = %(b)s AND status = 'active'),"
        "       (SELECT count(*) FROM clients WHERE client_id = %(b)s)",
        {"b": b},
    ).fetchone()
    assert counts == (1, 1, 1)


def test_a_client_cannot_insert_a_row_for_another_client(two_clients, intake_db, agent_db):
    (a, *_), (b, *_) = two_clients
    with pytest.raises(TenantViolation), tenant_transaction(intake_db, a) as conn:
        conn.execute("INSERT INTO automations (client_id, name) VALUES (%s, 'planted')", [b])
    with pytest.raises(TenantViolation), tenant_transaction(agent_db, a) as conn:
        conn.execute(
            "INSERT INTO connections (client_id, provider, auth_kind) VALUES (%s, 'slack', 'oauth2')", [b]
        )


def test_a_client_cannot_move_its_row_to_another_client(two_clients, intake_db):
    (a, *_), (b, *_) = two_clients
    # The intake may not write client_id at all (migration 0016); row-level security would refuse it too.
    with pytest.raises((TenantViolation, PermissionDenied)), tenant_transaction(intake_db, a) as conn:
        conn.execute("UPDATE automations SET client_id = %s", [b])


def test_without_a_client_every_customer_table_reads_empty(two_clients, owner_conn, database):
    tables = [r[0] for r in owner_conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_attribute a
             ON a.attrelid = c.oid AND a.attname = 'client_id'
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"""
    )]
    with psycopg.connect(database.agent_dsn, autocommit=True) as conn:
        for table in tables:
            try:
                count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            except psycopg.errors.InsufficientPrivilege:
                continue
            assert count == (0,), f"{table} is readable without a client"


def test_a_pool_of_one_does_not_carry_a_client_into_the_next_request(two_clients, database):
    (a, *_), _ = two_clients
    pool = Database(database.intake_dsn).open()
    pool.pool.resize(1, 1)
    try:
        with tenant_transaction(pool, a) as conn:
            assert conn.execute("SELECT count(*) FROM automations").fetchone() == (1,)
        with pool.connection() as conn:
            setting = conn.execute("SELECT current_setting('app.client_id', true)").fetchone()
            leaked = conn.execute("SELECT count(*) FROM automations").fetchone()
        assert setting in ((None,), ("",))
        assert leaked == (0,)
    finally:
        pool.close()


def test_a_failed_transaction_does_not_leave_its_client_on_the_connection(two_clients, database):
    (a, *_), _ = two_clients
    pool = Database(database.intake_dsn).open()
    pool.pool.resize(1, 1)
    try:
        with pytest.raises(RuntimeError), tenant_transaction(pool, a):
            raise RuntimeError("request failed midway")
        with pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)
    finally:
        pool.close()


def test_the_intake_role_cannot_read_credential_ciphertext(intake_db, agent_db):
    client = make_client(intake_db)
    connection = make_connection(agent_db, client)
    with tenant_transaction(agent_db, client) as conn:
        conn.execute(
            """INSERT INTO credentials (client_id, connection_id, purpose, key_id, nonce, ciphertext)
               VALUES (%s, %s, 'refresh_token', 'k1:test', %s, %s)""",
            [client, connection, b"\x00" * 12, b"opaque"],
        )
    for column in ("ciphertext", "nonce", "*"):
        with pytest.raises(PermissionDenied), tenant_transaction(intake_db, client) as conn:
            conn.execute(f"SELECT {column} FROM credentials")  # noqa: S608
    with tenant_transaction(intake_db, client) as conn:
        visible = conn.execute("SELECT purpose FROM credentials").fetchall()
    assert visible == [("refresh_token",)]


def test_pre_tenant_lookups_are_open_only_to_the_role_that_needs_them(intake_db, agent_db):
    client = make_client(intake_db)
    make_user(intake_db, client, email="owner@acme.test", password_hash="$argon2id$x")
    # Only the agent checks passwords (migration 0025): it alone reads a hash; the intake learns whose address it is.
    with agent_db.transaction() as conn:
        found = conn.execute("SELECT client_id, password_hash FROM hapex_find_login('OWNER@acme.test')").fetchall()
    assert found == [(client, "$argon2id$x")]
    with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
        conn.execute("SELECT * FROM hapex_find_login('owner@acme.test')")
    with intake_db.transaction() as conn:
        assert conn.execute("SELECT client_id FROM hapex_find_account('OWNER@acme.test')").fetchall() == [(client,)]
    with pytest.raises(PermissionDenied), agent_db.transaction() as conn:
        conn.execute("SELECT * FROM hapex_find_account('owner@acme.test')")
    with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
        conn.execute("SELECT * FROM hapex_admin_overview()")
    with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
        conn.execute("SELECT hapex_prune_expired_sessions()")


def test_the_login_lookup_returns_nothing_for_an_unknown_email(agent_db):
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT * FROM hapex_find_login('nobody@example.com')").fetchall() == []


def test_expired_sessions_are_pruned_and_live_ones_kept(intake_db, agent_db, owner_conn):
    client = make_client(intake_db)
    user = make_user(intake_db, client)
    for digest, expires in ((b"e" * 32, "-1 hour"), (b"l" * 32, "1 hour")):
        owner_conn.execute(  # the intake cannot write an expiry of its choosing (migration 0016)
            """INSERT INTO sessions (client_id, session_hash, user_id, expires_at)
               VALUES (%s, %s, %s, now() + %s::interval)""",
            [client, digest, user, expires],
        )
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_prune_expired_sessions()").fetchone() == (1,)
    remaining = owner_conn.execute("SELECT session_hash FROM sessions").fetchall()
    assert remaining == [(b"l" * 32,)]


def test_expired_oauth_states_are_pruned_by_the_agents_job_and_live_ones_kept(database, intake_db, agent_db,
                                                                               owner_conn):
    from agent_service import jobs
    from tests.run_fixtures import runtime_for

    client = make_client(intake_db)
    session_hash = hashlib.sha256(make_session(intake_db, client).encode()).digest()
    with tenant_transaction(intake_db, client) as conn:
        for digest, expires in ((b"e" * 32, "-1 minute"), (b"l" * 32, "10 minutes")):
            conn.execute(
                """INSERT INTO oauth_states (client_id, state_hash, session_hash, provider, requested_scopes,
                                             redirect_uri, expires_at)
                   VALUES (%s, %s, %s, 'google', '{}', 'https://intake.test/cb', now() + %s::interval)""",
                [client, digest, session_hash, expires],
            )
    with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
        conn.execute("SELECT hapex_prune_expired_oauth_states()")
    jobs.build_queue(database.agent_dsn, runtime_for(agent_db))
    assert jobs.prune_expired_oauth_states.func(timestamp=0) == 1
    remaining = owner_conn.execute("SELECT state_hash FROM oauth_states").fetchall()
    assert remaining == [(b"l" * 32,)]


def test_tenant_transaction_rejects_a_malformed_client_id(intake_db):
    with pytest.raises(ValueError):
        with tenant_transaction(intake_db, "1' OR '1'='1"):
            pass


def test_the_services_refuse_a_role_that_is_a_member_of_another_role(database, owner_conn):
    owner_conn.execute("GRANT hapex_definer TO hapex_agent")
    try:
        member = Database(database.agent_dsn).open()
        try:
            with pytest.raises(Exception, match="bypass"):
                member.assert_role_is_confined()
        finally:
            member.close()
    finally:
        owner_conn.execute("REVOKE hapex_definer FROM hapex_agent")
