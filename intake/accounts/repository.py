"""Reading and writing accounts, sessions and login throttle rows.

Functions that touch client rows take a tenant connection (tenant_transaction); the two
lookups made before a client is known go through the definer functions of 0003.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.db import QuerySet, execute, fetch_all, fetch_one, fetch_optional
from shared.db.pool import Connection

QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))


def find_account(conn: Connection, *, email: str) -> dict[str, Any] | None:
    """Whose address this is (client_id, user_id), never a hash: only the agent checks passwords."""
    return fetch_optional(conn, QUERIES["find_account"], email=email)


def sign_up(conn: Connection, *, client_id: uuid.UUID, name: str, email: str, password_hash: str) -> uuid.UUID:
    """A new client and its first user; AlreadyExists if the email is taken."""
    row = fetch_one(conn, QUERIES["sign_up"], client_id=client_id, name=name, email=email,
                    password_hash=password_hash)
    return row["user_id"]  # type: ignore[no-any-return]  # psycopg's dict rows hold Any


def get_account(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["get_account"], client_id=client_id, user_id=user_id)


def set_password_by_link(conn: Connection, *, token: str, password_hash: str) -> dict[str, Any] | None:
    """The link's client, user, kind and how many sessions ended; None when the link is not live."""
    return fetch_optional(conn, QUERIES["set_password_by_link"], token=token, password_hash=password_hash)


def delete_client(conn: Connection, *, client_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["delete_client"], client_id=client_id)


def find_session(conn: Connection, *, session_hash: bytes, idle: timedelta, absolute: timedelta,
                 touch_every: timedelta) -> dict[str, Any] | None:
    """The session's client and user, with `live` (within both limits) and `touched_lately`."""
    return fetch_optional(conn, QUERIES["find_session"], session_hash=session_hash, idle=idle,
                          absolute=absolute, touch_every=touch_every)


def touch_session(conn: Connection, *, session_hash: bytes, idle: timedelta,
                  absolute: timedelta) -> uuid.UUID | None:
    """The session's user if it is still live (and now extended), else None."""
    row = fetch_optional(conn, QUERIES["touch_session"], session_hash=session_hash, idle=idle, absolute=absolute)
    return None if row is None else row["user_id"]


def delete_session(conn: Connection, *, session_hash: bytes) -> None:
    execute(conn, QUERIES["delete_session"], session_hash=session_hash)


def delete_user_sessions(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["delete_user_sessions"], client_id=client_id, user_id=user_id)


def throttle_locked(conn: Connection, *, buckets: list[bytes]) -> bool:
    return bool(fetch_one(conn, QUERIES["throttle_locked"], buckets=buckets)["locked"])


def throttle_record_failure(
    conn: Connection, *, bucket: bytes, limit: int, window: timedelta, lockout: timedelta
) -> dict[str, Any]:
    return fetch_one(conn, QUERIES["throttle_record_failure"], bucket=bucket, limit=limit,
                     window=window, lockout=lockout)


def throttle_attempt(
    conn: Connection, *, bucket: bytes, limit: int, window: timedelta, lockout: timedelta
) -> bool:
    return bool(fetch_one(conn, QUERIES["throttle_attempt"], bucket=bucket, limit=limit, window=window,
                          lockout=lockout)["allowed"])


def throttle_undo_attempt(conn: Connection, *, bucket: bytes) -> None:
    execute(conn, QUERIES["throttle_undo_attempt"], bucket=bucket)


def throttle_clear(conn: Connection, *, bucket: bytes) -> None:
    execute(conn, QUERIES["throttle_clear"], bucket=bucket)


def throttle_forget_stale(conn: Connection) -> int:
    return execute(conn, QUERIES["throttle_forget_stale"])



def queue_account_email(
    conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, kind: str, link_base: str | None,
    link_ttl: timedelta | None, per_window: int, window: timedelta,
) -> uuid.UUID | None:
    """The new account email's id; None when this user had `per_window` of this kind lately."""
    row = fetch_optional(conn, QUERIES["queue_account_email"], client_id=client_id, user_id=user_id, kind=kind,
                         link_base=link_base, link_ttl=link_ttl, per_window=per_window, window=window)
    return None if row is None else row["email_id"]


def find_account_link(conn: Connection, *, token_hash: bytes) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["find_account_link"], token_hash=token_hash)


def use_account_link(conn: Connection, *, client_id: uuid.UUID, email_id: uuid.UUID, kind: str) -> uuid.UUID | None:
    """The link's user if this use is its first within its lifetime; else None."""
    row = fetch_optional(conn, QUERIES["use_account_link"], client_id=client_id, email_id=email_id, kind=kind)
    return None if row is None else row["user_id"]


def void_account_links(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> int:
    return execute(conn, QUERIES["void_account_links"], client_id=client_id, user_id=user_id, kind=kind)


def mark_email_verified(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> None:
    execute(conn, QUERIES["mark_email_verified"], client_id=client_id, user_id=user_id)


def email_verified(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    row = fetch_optional(conn, QUERIES["email_verified"], client_id=client_id, user_id=user_id)
    return bool(row and row["verified"])


def has_second_factor(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """A confirmed TOTP secret or a passkey."""
    return bool(fetch_one(conn, QUERIES["has_second_factor"], client_id=client_id, user_id=user_id)["enrolled"])


def has_totp(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return bool(fetch_one(conn, QUERIES["has_totp"], client_id=client_id, user_id=user_id)["enrolled"])


def list_passkeys(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_passkeys"], client_id=client_id, user_id=user_id)


def replace_recovery_codes(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID,
                           code_hashes: list[bytes]) -> None:
    execute(conn, QUERIES["delete_recovery_codes"], client_id=client_id, user_id=user_id)
    for code_hash in code_hashes:
        execute(conn, QUERIES["insert_recovery_code"], client_id=client_id, user_id=user_id, code_hash=code_hash)


def delete_recovery_codes(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["delete_recovery_codes"], client_id=client_id, user_id=user_id)


def use_recovery_code(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, code_hash: bytes) -> bool:
    return fetch_optional(conn, QUERIES["use_recovery_code"], client_id=client_id, user_id=user_id,
                          code_hash=code_hash) is not None


def unused_recovery_codes(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return int(fetch_one(conn, QUERIES["unused_recovery_codes"], client_id=client_id, user_id=user_id)["unused"])


def list_members(conn: Connection, *, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_members"], client_id=client_id)


def invite_member(conn: Connection, *, session_secret: str, email: str, role: str) -> uuid.UUID | None:
    """The invited user's id (None unless the session is an owner's, live); AlreadyExists if the address has
    an account (in this client or another)."""
    row = fetch_optional(conn, QUERIES["invite_member"], session_secret=session_secret, email=email, role=role)
    return None if row is None else row["user_id"]


def delete_member(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, acting_user_id: uuid.UUID) -> int:
    return execute(conn, QUERIES["delete_member"], client_id=client_id, user_id=user_id,
                   acting_user_id=acting_user_id)


def set_member_role(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID, acting_user_id: uuid.UUID,
                    role: str) -> int:
    return execute(conn, QUERIES["set_member_role"], client_id=client_id, user_id=user_id,
                   acting_user_id=acting_user_id, role=role)


def list_user_sessions(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return fetch_all(conn, QUERIES["list_user_sessions"], client_id=client_id, user_id=user_id)


def account_state(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    return fetch_optional(conn, QUERIES["account_state"], client_id=client_id, user_id=user_id)


def set_require_second_factor(conn: Connection, *, client_id: uuid.UUID, required: bool) -> None:
    execute(conn, QUERIES["set_require_second_factor"], client_id=client_id, required=required)


def change_email_by_link(conn: Connection, *, token: str) -> dict[str, Any] | None:
    """The link's client and user once the new address is theirs (AlreadyExists if another account took it)."""
    return fetch_optional(conn, QUERIES["change_email_by_link"], token=token)
