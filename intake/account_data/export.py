"""The data export as a stream of JSON text: a client with a million runs is exported in bounded memory.

Each section is read through a server-side cursor in one tenant transaction (one snapshot, so
the archive is consistent) and written a row at a time; nothing holds more than a batch of
rows. The stored step outputs are collected before the stream starts, so that an export that
cannot include them is refused with a page rather than cut off half-way.

The stream is written to a spooled file (memory up to SPOOL_IN_MEMORY, then disk) before the
download starts, and the file is what the browser reads: the database connection and its
transaction are back in the pool before the first byte is sent, however slowly (or never) the
client reads, and a failure while reading rows is an error page, not a file cut short.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from intake.account_data import repository
from intake.account_data.repository import EXPORT_SECTIONS, QUERIES
from shared.db import Database, tenant_transaction

EXPORT_FORMAT = "hapex-account-export/1"
ROWS_PER_FETCH = 2000
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # bytes of archive kept in memory before the spool moves to a temporary file


def json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def _encode(value: Any) -> str:
    return json.dumps(value, default=json_value, ensure_ascii=False)


def stream_export(db: Database, client_id: uuid.UUID, *, exported_at: datetime,
                  stored_outputs: list[dict[str, Any]]) -> Iterator[str]:
    """The archive `{"format", "exported_at", "client", <sections>, "stored_step_outputs"}`, in pieces."""
    with tenant_transaction(db, client_id) as conn:
        client = repository.export_client(conn, client_id=client_id)
        yield (f'{{"format": {_encode(EXPORT_FORMAT)},\n"exported_at": '
               f'{_encode(exported_at.isoformat(timespec="seconds"))},\n"client": {_encode(client)}')
        for key, query in EXPORT_SECTIONS:
            yield f',\n{_encode(key)}: ['
            with conn.cursor(name=f"export_{key}", row_factory=dict_row) as cursor:
                cursor.itersize = ROWS_PER_FETCH
                cursor.execute(QUERIES[query], {"client_id": client_id})
                separator = "\n"
                while rows := cursor.fetchmany(ROWS_PER_FETCH):
                    yield separator + ",\n".join(_encode(row) for row in rows)
                    separator = ",\n"
            yield "\n]"
    yield f',\n"stored_step_outputs": {_encode(stored_outputs)}\n}}\n'


def spool_export(db: Database, client_id: uuid.UUID, *, exported_at: datetime,
                 stored_outputs: list[dict[str, Any]]) -> tempfile.SpooledTemporaryFile[bytes]:
    """The whole archive, written out and rewound; the caller serves it and closes it."""
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - the caller closes it
        max_size=SPOOL_IN_MEMORY, prefix="hapex-export-")
    try:
        for chunk in stream_export(db, client_id, exported_at=exported_at, stored_outputs=stored_outputs):
            spool.write(chunk.encode("utf-8"))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool
