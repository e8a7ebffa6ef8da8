"""Named SQL blocks kept in .sql files, and the thin functions that run them.

A file holds blocks of this form, parsed once:

    -- create_client --
    -- Insert a client row; app.client_id must already be the new id.
    INSERT INTO clients (client_id, name) VALUES (%(client_id)s, %(name)s)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.db.errors import NoResult, translated_errors

_BLOCK_HEADER = re.compile(r"^-- ([a-z0-9_]+) --\s*$", re.MULTILINE)


class QuerySet:
    """The named queries of one .sql file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queries = parse_queries(self.path.read_text(encoding="utf-8"))

    def __getitem__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self.path.name}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    def names(self) -> list[str]:
        return sorted(self._queries)


def parse_queries(text: str) -> dict[str, str]:
    """Split a file into {name: sql}; the line after each header is its description."""
    queries: dict[str, str] = {}
    headers = list(_BLOCK_HEADER.finditer(text))
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body_lines = text[header.end() : end].strip("\n").splitlines()
        if not body_lines or not body_lines[0].startswith("-- "):
            raise ValueError(f"query {header.group(1)!r} needs a one-line description")
        name = header.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = "\n".join(body_lines[1:]).strip()
    return queries


def execute(conn: psycopg.Connection[Any], query: str, **params: Any) -> int:
    """Run a statement; return the number of rows it touched."""
    with translated_errors(), conn.cursor() as cur:
        cur.execute(query, params)
        return cur.rowcount


def fetch_one(conn: psycopg.Connection[Any], query: str, **params: Any) -> dict[str, Any]:
    """Return exactly one row as a dict, or raise NoResult."""
    row = fetch_optional(conn, query, **params)
    if row is None:
        raise NoResult()
    return row


def fetch_optional(
    conn: psycopg.Connection[Any], query: str, **params: Any
) -> dict[str, Any] | None:
    """Return the first row as a dict, or None."""
    with translated_errors(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def fetch_all(conn: psycopg.Connection[Any], query: str, **params: Any) -> list[dict[str, Any]]:
    """Return every row as a dict."""
    with translated_errors(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()
