"""Database access shared by both services: pool, tenant transactions, named queries."""

from shared.db.errors import (
    AlreadyExists,
    DatabaseError,
    DatabaseUnavailable,
    NoResult,
    PermissionDenied,
    TenantViolation,
)
from shared.db.pool import Database, tenant_transaction
from shared.db.queries import QuerySet, execute, fetch_all, fetch_one, fetch_optional

__all__ = [
    "AlreadyExists",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "NoResult",
    "PermissionDenied",
    "QuerySet",
    "TenantViolation",
    "execute",
    "fetch_all",
    "fetch_one",
    "fetch_optional",
    "tenant_transaction",
]
