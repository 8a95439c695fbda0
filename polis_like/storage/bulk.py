"""Reading many rows at column speed: no Python object per row.

The worker's first computation of an imported conversation and the export read millions of vote
events. PostgreSQL sends them with a binary ``COPY``, whose fixed-size rows are decoded a chunk
at a time as numpy records (big-endian); SQLite's rows are packed into records a chunk of rows
at a time. Either way the caller gets chunks of native records, and memory stays flat in the
number of rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy.orm import Session

#: What a binary COPY starts with (then 4 bytes of flags and the length of an extension area).
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
#: Bytes of a binary COPY decoded at a time, and rows of SQLite fetched at a time.
COPY_CHUNK = 1 << 23
SQLITE_CHUNK = 100_000


def read_chunks(
    session: Session, query: str, parameters: Sequence[int], dtype: np.dtype
) -> Iterator[np.ndarray]:
    """The rows of ``query`` as chunks of records of ``dtype`` (one field a column, in order).

    ``query`` is a SELECT with a ``{}`` where each (integer) parameter goes; its columns are
    integers, never NULL, of the sizes of ``dtype``'s fields (PostgreSQL: bigint for 8 bytes,
    integer for 4, smallint for 2; on SQLite a 1-byte field is fine too).
    """
    if session.get_bind().dialect.name == "postgresql":
        yield from _copy_chunks(session, query, parameters, dtype)
        return
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(query.format(*["?"] * len(parameters)), tuple(parameters))
        while rows := cursor.fetchmany(SQLITE_CHUNK):
            yield np.array(rows, dtype=dtype)
    finally:
        cursor.close()


#: A vote's pid, sid and value in one SQLite integer, for pids below 2**29 and sids below 2**31
#: (:func:`packs_votes`): SQLite makes a Python object of each value it returns, and one costs
#: a third of three. :func:`unpack_votes` reverses it.
SQLITE_PACKED_VOTE = "((pid << 33) | (sid << 2) | (vote + 1))"


def packs_votes(pids: np.ndarray, sids: np.ndarray) -> bool:
    """Whether :data:`SQLITE_PACKED_VOTE` holds the votes of these pids and sids."""
    return bool(
        (not len(pids) or (pids.min() >= 0 and pids.max() < 1 << 29))
        and (not len(sids) or (sids.min() >= 0 and sids.max() < 1 << 31))
    )


def unpack_votes(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pids, sids and votes of :data:`SQLITE_PACKED_VOTE` values."""
    return packed >> 33, (packed >> 2) & 0x7FFFFFFF, (packed & 3) - 1


def sqlite_integers(
    session: Session, query: str, parameters: Sequence[int], n_columns: int
) -> Iterator[np.ndarray]:
    """The rows of a SQLite ``query`` of ``n_columns`` integer columns (never NULL), as int64
    arrays of shape (rows, n_columns), a chunk of rows at a time (``?`` parameters)."""
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(query, tuple(parameters))
        while rows := cursor.fetchmany(SQLITE_CHUNK):
            values = itertools.chain.from_iterable(rows)
            count = len(rows) * n_columns
            yield np.fromiter(values, dtype=np.int64, count=count).reshape(-1, n_columns)
    finally:
        cursor.close()


def read_all(
    session: Session, query: str, parameters: Sequence[int], dtype: np.dtype
) -> np.ndarray:
    """Every row of ``query`` (see :func:`read_chunks`) as one array of records."""
    chunks = list(read_chunks(session, query, parameters, dtype))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype)


def _copy_dtype(dtype: np.dtype) -> np.dtype:
    """One row of a binary COPY of columns of ``dtype``: the field count, then each field's
    byte length and value, big-endian."""
    assert dtype.names is not None
    fields: list[tuple[str, str]] = [("_fields", ">i2")]
    for name in dtype.names:
        size = max(dtype[name].itemsize, 2)  # no 1-byte integer in PostgreSQL
        fields += [(f"_{name}_size", ">i4"), (name, f">i{size}")]
    return np.dtype(fields)


def _copy_chunks(
    session: Session, query: str, parameters: Sequence[int], dtype: np.dtype
) -> Iterator[np.ndarray]:
    from psycopg import sql

    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(
        sql.SQL(query).format(*(sql.Literal(int(p)) for p in parameters))
    )
    row = _copy_dtype(dtype)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    pending = bytearray()
    header_read = False
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for data in copy:
            pending += data
            if not header_read:
                if len(pending) < len(_SIGNATURE) + 8:
                    continue
                if not pending.startswith(_SIGNATURE):
                    raise RuntimeError("not a PostgreSQL binary COPY")
                start = len(_SIGNATURE) + 8 + int.from_bytes(pending[15:19], "big")
                if len(pending) < start:
                    continue
                del pending[:start]
                header_read = True
            if len(pending) >= COPY_CHUNK:
                yield _decode(pending, row, dtype)
    if not header_read or pending[-2:] != _TRAILER:
        raise RuntimeError("a binary COPY ended early")
    del pending[-2:]
    if len(pending) % row.itemsize:
        raise RuntimeError("a binary COPY ended in the middle of a row")
    if pending:
        yield _decode(pending, row, dtype)


def _decode(pending: bytearray, row: np.dtype, dtype: np.dtype) -> np.ndarray:
    """The whole rows at the start of ``pending`` as records of ``dtype`` (removed from it)."""
    n = len(pending) // row.itemsize
    rows = np.frombuffer(pending, dtype=row, count=n)
    names = dtype.names
    assert names is not None
    sizes_ok = np.all(rows["_fields"] == len(names)) and all(
        np.all(rows[f"_{name}_size"] == row[name].itemsize) for name in names
    )
    if not sizes_ok:
        raise RuntimeError("unexpected row in a binary COPY (a NULL, or a column of another type)")
    records = np.empty(n, dtype=dtype)
    for name in names:
        records[name] = rows[name]
    del rows
    del pending[: n * row.itemsize]
    return records


def read_aggregated(
    session: Session, query: str, parameters: Sequence[int], dtype: np.dtype
) -> np.ndarray:
    """Every row of ``query`` (see :func:`read_chunks`) as records of ``dtype``, on PostgreSQL
    sent as one row of arrays (``array_agg`` of each column) instead of a message a row: the
    server builds the arrays while the client waits (and may do other work in another thread),
    and the client decodes them as numpy arrays. For a read of at most a few million rows (the
    arrays of one row must stay well under PostgreSQL's 1 GB).

    ``dtype``'s field names are the query's column names.
    """
    from psycopg import sql

    names = dtype.names
    assert names is not None
    statement = sql.SQL("COPY (SELECT {} FROM ({}) AS q) TO STDOUT (FORMAT binary)").format(
        sql.SQL(", ").join(sql.SQL("array_agg({})").format(sql.Identifier(n)) for n in names),
        sql.SQL(query).format(*(sql.Literal(int(p)) for p in parameters)),
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None
    data = bytearray()
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for block in copy:
            data += block
    if not data.startswith(_SIGNATURE) or not data.endswith(_TRAILER):
        raise RuntimeError("not a whole PostgreSQL binary COPY")
    at = len(_SIGNATURE) + 8 + int.from_bytes(data[15:19], "big")
    if int.from_bytes(data[at : at + 2], "big", signed=True) != len(names):
        raise RuntimeError("unexpected row in a binary COPY")
    at += 2
    columns = []
    for name in names:
        length = int.from_bytes(data[at : at + 4], "big", signed=True)
        if length < 0:  # array_agg of no rows is NULL
            return np.empty(0, dtype)
        column, at = _array(data, at + 4, dtype[name]), at + 4 + length
        columns.append(column)
    records = np.empty(len(columns[0]), dtype)
    for name, column in zip(names, columns, strict=True):
        records[name] = column
    return records


def _array(data: bytearray, at: int, field: np.dtype) -> np.ndarray:
    """The one-dimensional integer array without NULLs of a binary COPY field at ``at``."""
    header = np.frombuffer(data, dtype=">i4", count=5, offset=at)
    n_dims, has_nulls = int(header[0]), int(header[1])
    if n_dims != 1 or has_nulls:
        raise RuntimeError("unexpected array in a binary COPY")
    size = max(field.itemsize, 2)  # no 1-byte integer in PostgreSQL
    element = np.dtype([("size", ">i4"), ("value", f">i{size}")])
    elements = np.frombuffer(data, dtype=element, count=int(header[3]), offset=at + 20)
    if not np.all(elements["size"] == size):
        raise RuntimeError("unexpected element in a binary COPY (a column of another type)")
    return elements["value"].astype(field)
