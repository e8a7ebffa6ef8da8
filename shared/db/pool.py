"""One connection pool per process, and the tenant transaction every query runs in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.config import PoolSettings
from shared.db.errors import (
    DatabaseError,
    DatabaseRefusedCredentials,
    DatabaseUnavailable,
    refuses_credentials,
    translated_errors,
)

Connection = psycopg.Connection[Any]

# How long a new connection may take to open, and how long the pool keeps retrying a lost one
# before it gives the attempt up (the next request then starts a fresh one): bounded so that
# the first requests after an outage find the database, not a reconnection backed off for minutes.
CONNECT_TIMEOUT = 5
RECONNECT_TIMEOUT = 10.0
# The readiness probe's bound: a connection within it, and a statement within it.
PROBE_TIMEOUT = 1.0


def check_credentials(conninfo: str) -> None:
    """DatabaseRefusedCredentials at once if the server refuses the role or password.

    A pool would retry a refused password as if the server were away; one plain connection
    tells the two apart. A database that does not answer is not this check's business.
    """
    try:
        psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.OperationalError as exc:
        if refuses_credentials(exc):
            raise DatabaseRefusedCredentials() from None  # the server's text names the role: not passed on


class RoleBypassesTenantIsolation(DatabaseError):
    name = "role_bypasses_tenant_isolation"
    message = ("The service's database role could bypass row-level security (superuser, BYPASSRLS, owner or "
               "member of another role); refusing to run.")


class Database:
    """A psycopg pool of autocommit connections; transactions are always explicit."""

    def __init__(self, conninfo: str, settings: PoolSettings | None = None, *, name: str = "hapex") -> None:
        settings = settings or PoolSettings()
        self.pool = ConnectionPool(
            conninfo,
            min_size=settings.min_size,
            max_size=settings.max_size,
            kwargs={"autocommit": True, "application_name": name, "connect_timeout": CONNECT_TIMEOUT,
                    **({"prepare_threshold": None}
                       if settings.transaction_pooler or settings.custom_plans else {})},
            max_lifetime=settings.max_lifetime,
            # A connection the server dropped (restart, failover, AdminShutdown) is found and
            # replaced on checkout, so the first request after an outage does not get it.
            check=self._check_on_checkout,
            timeout=settings.checkout_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            open=False,
            name=name,
        )

    def _check_on_checkout(self, conn: Connection) -> None:
        """A dropped connection means the server went away: every idle one went with it, so all are
        checked now, and the pool's retry (a second later) gets a new one rather than the next stale one."""
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            self.pool.check()
            raise

    def open(self, *, wait: bool = True, timeout: float = 10.0) -> Database:
        self.pool.open(wait=wait, timeout=timeout)
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self, *, timeout: float | None = None) -> Iterator[Connection]:
        """A pooled connection; DatabaseUnavailable when none works within the checkout timeout."""
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable() from exc
        except psycopg.OperationalError as exc:
            # The connection broke while in use: the pool discards it on return.
            raise DatabaseUnavailable() from exc

    def answers(self) -> bool:
        """Whether the database answers a statement within PROBE_TIMEOUT (the readiness probe)."""
        try:
            with self.connection(timeout=PROBE_TIMEOUT) as conn, conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {int(PROBE_TIMEOUT * 1000)}")
                conn.execute("SELECT 1")
        except (DatabaseError, psycopg.Error):
            return False
        return True

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction with no client: only for the narrow pre-tenant functions."""
        with self.connection() as conn, translated_errors(), conn.transaction():
            yield conn

    def assert_role_is_confined(self) -> None:
        """Refuse to serve as a role that owns tables, is superuser, bypasses RLS, or is a
        member of any other role (hapex_definer's open policies would then apply to it)."""
        with self.connection() as conn:
            row = conn.execute(
                """
                SELECT r.rolsuper, r.rolbypassrls,
                       EXISTS (SELECT 1 FROM pg_class c
                               WHERE c.relowner = r.oid AND c.relkind = 'r'
                                 AND c.relnamespace = 'public'::regnamespace) AS owns_tables,
                       EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS inherits_roles
                FROM pg_roles r WHERE r.rolname = current_user
                """
            ).fetchone()
        if row is None or any(row):
            raise RoleBypassesTenantIsolation()


@contextmanager
def tenant_transaction(db: Database, client_id: uuid.UUID | str) -> Iterator[Connection]:
    """A transaction in which row-level security shows only this client's rows.

    app.client_id is set with set_config(..., true), so it ends with the transaction and a
    pooled connection never carries one client into the next request.
    """
    client_uuid = client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(str(client_id))
    with db.connection() as conn, translated_errors(), conn.transaction():
        conn.execute("SELECT set_config('app.client_id', %s, true)", [str(client_uuid)])
        yield conn
