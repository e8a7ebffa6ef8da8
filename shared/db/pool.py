"""One connection pool per process, and the tenant transaction every query runs in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.config import PoolSettings
from shared.db.errors import DatabaseError, translated_errors

Connection = psycopg.Connection[Any]


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
            kwargs={"autocommit": True, "application_name": name},
            open=False,
            name=name,
        )

    def open(self, *, wait: bool = True, timeout: float = 10.0) -> Database:
        self.pool.open(wait=wait, timeout=timeout)
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError("The database is unavailable.") from exc

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
