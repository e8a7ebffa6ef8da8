"""Domain errors that psycopg errors are translated into."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from shared.errors import HapexError


class DatabaseError(HapexError):
    name = "database_error"
    message = "The database could not complete the operation."


class DatabaseUnavailable(DatabaseError):
    """The database does not answer (down, restarting, refusing connections): brief, so worth a retry."""

    name = "database_unavailable"
    status = 503
    message = "The service is briefly unavailable; please try again in a few seconds."
    retry_after_seconds = 5  # a restart or failover takes seconds; the pool reconnects by itself


class DatabaseRefusedCredentials(DatabaseError):
    """The database refused the service's role or password: configuration, not an outage."""

    name = "database_refused_credentials"
    message = "The database refused the configured role or password."


AUTHENTICATION_SQLSTATES = frozenset({"28000", "28P01"})  # invalid_authorization_specification, invalid_password


def refuses_credentials(exc: psycopg.OperationalError) -> bool:
    """Whether a failed connection is the server refusing who we are, not the server being away."""
    if exc.sqlstate in AUTHENTICATION_SQLSTATES:
        return True
    # A failed connect carries no SQLSTATE in some libpq versions; the server's words say it.
    text = str(exc)
    return ("authentication failed" in text or "no pg_hba.conf entry" in text
            or ('FATAL:  role "' in text and "does not exist" in text))


class NoResult(DatabaseError):
    name = "no_result"
    message = "The query returned no row."


class AlreadyExists(DatabaseError):
    name = "already_exists"
    message = "A row with the same unique key already exists."


class PermissionDenied(DatabaseError):
    name = "permission_denied"
    message = "The database role may not do this."


class TenantViolation(DatabaseError):
    name = "tenant_violation"
    message = "The row does not belong to the client of this transaction."


class ReferencedRowMissing(DatabaseError):
    name = "referenced_row_missing"
    message = "A row this one refers to does not exist for this client."


class InvalidValue(DatabaseError):
    name = "invalid_value"
    message = "A value was refused by a database constraint."


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn psycopg errors into the domain errors above, keeping the original as cause."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise AlreadyExists() from exc
    except pg_errors.InsufficientPrivilege as exc:
        # Row-level security's WITH CHECK failure is SQLSTATE 42501 too.
        if "row-level security" in str(exc):
            raise TenantViolation() from exc
        raise PermissionDenied() from exc
    except pg_errors.ForeignKeyViolation as exc:
        raise ReferencedRowMissing() from exc
    except (
        pg_errors.CheckViolation,
        pg_errors.NotNullViolation,
        pg_errors.InvalidTextRepresentation,
        pg_errors.StringDataRightTruncation,
    ) as exc:
        raise InvalidValue() from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable() from exc
