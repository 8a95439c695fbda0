"""The fast path of ``read_export``: votes.csv and participants-votes.csv at column speed.

Each file is read in pieces of whole lines and scanned by a compiled kernel
(``_csv_kernels.scan``) straight into numpy arrays, with no Python object per vote. The scan
accepts only what it can prove the row reader reads the same way (see its docstring); at the
first doubt :func:`read` returns None and ``read_export`` reads the export row by row, which
then gives the same Conversation or raises the exact ``file:line`` error. The error messages
therefore live in one place, the row reader.
"""

from __future__ import annotations

import codecs
import csv
import mmap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from polis_like.conversation import Conversation, Statement, VoteEvents, canonical_ids
from polis_like.errors import InputError
from polis_like.io import _csv_kernels as kernels
from polis_like.io import read as rows
from polis_like.io.polis_csv import PARTICIPANTS_VOTES, VOTES, XID, Table
from polis_like.io.source import ExportSource

#: Bytes read at a time: large enough for the kernel to run long, small enough to stay flat.
CHUNK_BYTES = 32 * 1024**2
#: Cells kept per scan call of participants-votes.csv (the arrays are reused).
_CELL_BATCH = 1 << 22
#: Rows kept per scan call (the block is reused).
_ROW_BATCH = 1 << 18
_BOM = b"\xef\xbb\xbf"
_MAX_ID = 2**31 - 1


class _Doubt(Exception):
    """The fast path cannot prove the file valid: read the export row by row."""


@dataclass
class _Scanned:
    """One file scanned: the kept columns (by slot), the cells, the bytes of each span."""

    columns: dict[int, _Column]
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # row (global), cell column, vote
    spans: list[tuple[bytes | mmap.mmap, np.ndarray]]  # the data, its rows' (start, end)

    def column(self, slot: int) -> np.ndarray:
        return self.columns[slot].values()


def read(
    source: ExportSource, summary: dict[str, str], comments: dict[str, Statement] | None
) -> Conversation | None:
    """The Conversation of the export, or None when any doubt sends it to the row reader."""
    try:
        return _read(source, summary, comments)
    except _Doubt:
        return None


def _read(
    source: ExportSource, summary: dict[str, str], comments: dict[str, Statement] | None
) -> Conversation:
    has_votes = source.has(VOTES)
    has_matrix = source.has(PARTICIPANTS_VOTES)
    matrix: _FastMatrix | None
    together = has_votes and has_matrix and comments is not None and not source.in_archive
    if together:
        time, comment, voter, vote, has_timestamps, matrix = _both(source)
    else:
        matrix = _matrix(source, cells=not has_votes) if has_matrix else None
    if has_votes:
        # The same checks, in the same order, as the row reader's.
        comments = rows._check_comments_present(source, comments)
        if not together:
            time, comment, voter, vote, has_timestamps = _votes(source)
        if matrix is not None:
            try:
                rows.check_matrix_comments(source, matrix.comment_ids, comments, matrix.line)
            except InputError:
                raise _Doubt from None
        statements = _statements(comments)
        statement = _index_of(comment, _ids(s.id for s in statements))
    else:
        assert matrix is not None  # open_export found one of the two files
        comments = dict(comments or {})
        for cid in matrix.comment_ids:
            comments.setdefault(cid, Statement(id=cid, text=""))
        statements = _statements(comments)
        cell_ids = _ids(matrix.comment_ids)
        voter = matrix.pids[matrix.cell_row]
        statement = _index_of(cell_ids[matrix.cell_col], _ids(s.id for s in statements))
        vote = matrix.cell_vote
        time = np.arange(len(vote), dtype=np.int64)
        has_timestamps = False
    authors = _ids(s.author_id for s in statements if s.author_id is not None)
    everyone = [voter, authors] + ([matrix.pids] if matrix is not None else [])
    ids = _union(everyone)
    events = VoteEvents(time, _index_of(voter, ids), statement, vote)
    participant_ids = [str(i) for i in ids.tolist()]
    return Conversation(
        summary=summary,
        statements=statements,
        participant_ids=participant_ids,
        xids=matrix.xids if matrix is not None else {},
        votes=events,
        reference_groups=matrix.groups if matrix is not None else {},
        has_timestamps=has_timestamps,
    )


def _both(
    source: ExportSource,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, _FastMatrix]:
    """votes.csv here and participants-votes.csv in a thread at the same time (the scan
    releases the GIL), each file in a folder mapped on its own. The matrix's outcome (a doubt,
    an error) comes first, as the row reader reads it first."""
    with ThreadPoolExecutor(1) as pool:
        matrix = pool.submit(_matrix, source, False)
        try:
            votes = _votes(source)
        except (_Doubt, InputError):
            matrix.result()
            raise
        return (*votes, matrix.result())


def _statements(comments: dict[str, Statement]) -> list[Statement]:
    return [comments[cid] for cid in canonical_ids(list(comments))]


def _ids(ids: Iterator[str] | list[str]) -> np.ndarray:
    """Ids (digit strings, leading zeros dropped) as int64; a doubt past the scan's range."""
    values = []
    for i in ids:
        if len(i) > 10 or int(i) > _MAX_ID:
            raise _Doubt
        values.append(int(i))
    return np.array(values, dtype=np.int64)


def _union(parts: list[np.ndarray]) -> np.ndarray:
    """The sorted distinct ids of all ``parts`` (non-negative int64, each at most 2**31 - 1)."""
    total = sum(len(p) for p in parts)
    top = max((int(p.max()) for p in parts if len(p)), default=-1)
    if top < 4 * total + (1 << 20):
        present = np.zeros(top + 1, dtype=bool)
        for p in parts:
            present[p] = True
        return np.flatnonzero(present)
    return np.unique(np.concatenate([p.astype(np.int64) for p in parts]))


def _index_of(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The int32 position of each of ``values`` in the sorted ``ids``; a doubt if one is not."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int32)
    top = int(values.max())
    if len(ids) and top <= int(ids[-1]) and ids[-1] < 2 * len(values) + (1 << 20):
        lookup = np.full(int(ids[-1]) + 1, -1, dtype=np.int32)
        lookup[ids] = np.arange(len(ids), dtype=np.int32)
        index = lookup[values]
        if (index < 0).any():
            raise _Doubt
        return index
    index = np.searchsorted(ids, values)
    if len(ids) == 0 or top > int(ids[-1]) or not np.array_equal(ids[index], values):
        raise _Doubt
    return index.astype(np.int32)


def _votes(source: ExportSource) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """votes.csv as arrays: timestamp, comment id, voter id, vote; whether times are real."""
    header, pieces = _open(source, VOTES, rows.VOTES_REQUIRED)
    col = header.columns
    width = len(header.header)
    kinds = np.full(width, kernels.TEXT, dtype=np.int8)
    slots = np.full(width, -1, dtype=np.int64)
    for slot, (name, kind) in enumerate(
        (
            ("timestamp", kernels.INT),
            ("comment-id", kernels.ID),
            ("voter-id", kernels.ID),
            ("vote", kernels.VOTE),
        )
    ):
        kinds[col[name]], slots[col[name]] = kind, slot
    i_datetime = col.get("datetime")
    if i_datetime is not None and kinds[i_datetime] == kernels.TEXT:
        kinds[i_datetime], slots[i_datetime] = kernels.FLAG, 4
    keep = {0: np.int64, 1: np.int32, 2: np.int32, 3: np.int8, 4: np.bool_}
    scanned = _scan(pieces, kinds, slots, keep, emit=False)
    time, comment, voter, vote = (scanned.column(s) for s in range(4))
    any_datetime = i_datetime is not None and bool(scanned.column(4).any())
    has_timestamps = any_datetime or i_datetime is None or len(vote) == 0
    return time, comment, voter, vote, has_timestamps


@dataclass
class _FastMatrix:
    line: int
    comment_ids: list[str]
    pids: np.ndarray  # int32, in file order
    groups: dict[str, int | None]
    xids: dict[str, str]
    cell_row: np.ndarray
    cell_col: np.ndarray
    cell_vote: np.ndarray


def _matrix(source: ExportSource, cells: bool) -> _FastMatrix:
    """participants-votes.csv: participants, groups, xids, and (``cells``) its cells."""
    header, pieces = _open(source, PARTICIPANTS_VOTES, rows.PARTICIPANTS_REQUIRED)
    try:
        comment_columns = rows.matrix_comment_columns(header)
    except InputError:
        raise _Doubt from None
    col = header.columns
    width = len(header.header)
    kinds = np.full(width, kernels.TEXT, dtype=np.int8)
    slots = np.full(width, -1, dtype=np.int64)
    kinds[col["participant"]], slots[col["participant"]] = kernels.ID, 0
    kinds[col["group-id"]], slots[col["group-id"]] = kernels.OPT_INT, 1
    for name in rows.PARTICIPANTS_NUMERIC:
        if name in col:
            kinds[col[name]] = kernels.INT
    for k, (_, i) in enumerate(comment_columns):
        kinds[i], slots[i] = kernels.CELL, k
    i_xid = col.get(XID)
    if i_xid is not None:
        kinds[i_xid], slots[i_xid] = kernels.SPAN, 2
    scanned = _scan(pieces, kinds, slots, {0: np.int32, 1: np.int64}, emit=cells)
    pids = scanned.column(0)
    ordered = np.sort(pids)
    if (ordered[1:] == ordered[:-1]).any():
        raise _Doubt  # a participant twice: the row reader names the line
    names = [str(p) for p in pids.tolist()]
    group_values = scanned.column(1).tolist()
    groups = {
        pid: (None if g == kernels.NONE else g) for pid, g in zip(names, group_values, strict=True)
    }
    xids: dict[str, str] = {}
    if i_xid is not None:
        at = 0
        for data, spans in scanned.spans:
            for start, end in spans.tolist():
                if end > start:
                    xids[names[at]] = data[start:end].decode("utf-8")
                at += 1
    if scanned.cells:
        cell_row, cell_col, cell_vote = (
            np.concatenate(part) for part in zip(*scanned.cells, strict=True)
        )
    else:
        cell_row = cell_col = np.empty(0, dtype=np.int32)
        cell_vote = np.empty(0, dtype=np.int8)
    return _FastMatrix(
        line=header.header_line,
        comment_ids=[cid for cid, _ in comment_columns],
        pids=pids,
        groups=groups,
        xids=xids,
        cell_row=cell_row,
        cell_col=cell_col,
        cell_vote=cell_vote,
    )


@dataclass
class _Piece:
    """Whole lines of a file: ``data`` (bytes, or the file mapped), as ``buf`` from ``start``."""

    data: bytes | mmap.mmap
    buf: np.ndarray
    start: int


def _open(
    source: ExportSource, name: str, required: tuple[str, ...]
) -> tuple[Table, Iterator[_Piece]]:
    """The header (checked by ``Table``) and the rest of the file as pieces of whole lines: the
    whole file mapped for a folder, pieces of ``CHUNK_BYTES`` inflated from a .zip.

    The header must be the first line, plain ASCII without quotes; anything else is a doubt.
    """
    mapped = source.mapped(name)
    if mapped is not None:
        end = mapped.find(b"\n")
        first = mapped[: end + 1] if end >= 0 else mapped[:]
        pieces: Iterator[bytes] = iter(())
    else:
        pieces = _whole_lines(source.chunks(name, CHUNK_BYTES))
        first = next(pieces, b"")
    skip = len(_BOM) if first.startswith(_BOM) else 0
    end = first.find(b"\n")
    line = first[skip:] if end < 0 else first[skip:end]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line or not line.isascii() or b'"' in line or any(c < 32 for c in line):
        raise _Doubt
    try:
        header = Table(line + b"\n", source.where(name), required)
    except InputError:
        raise _Doubt from None
    body = len(first) if end < 0 else end + 1

    def remaining() -> Iterator[_Piece]:
        if mapped is not None:
            yield _Piece(mapped, np.frombuffer(mapped, dtype=np.uint8), body)
            return
        if body < len(first):
            yield _Piece(first, np.frombuffer(first, dtype=np.uint8), body)
        for piece in pieces:
            yield _Piece(piece, np.frombuffer(piece, dtype=np.uint8), 0)

    return header, remaining()


def _whole_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` re-cut after their last line end (the rest carried to the next piece)."""
    tail = b""
    for chunk in chunks:
        data = tail + chunk if tail else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            tail = data
            continue
        tail = data[cut:]
        yield data[:cut]
    if tail:
        yield tail


def _scan(
    pieces: Iterator[_Piece],
    kinds: np.ndarray,
    slots: np.ndarray,
    keep: dict[int, type],
    emit: bool,
) -> _Scanned:
    """Run the kernel over every piece, keeping the ``keep`` slots as their dtype; a doubt as
    soon as the kernel has one."""
    limit = csv.field_size_limit()
    n_slots = int(slots[kinds != kernels.CELL].max(initial=-1)) + 2  # a SPAN takes two
    columns = {slot: _Column(dtype) for slot, dtype in keep.items()}
    scanned = _Scanned(columns=columns, cells=[], spans=[])
    span_slots = slots[kinds == kernels.SPAN].tolist()
    n_cells = int((kinds == kernels.CELL).sum()) if emit else 0
    capacity = max(_CELL_BATCH, n_cells) if emit else 0
    cell_row = np.empty(capacity, dtype=np.int32)
    cell_col = np.empty(capacity, dtype=np.int32)
    cell_vote = np.empty(capacity, dtype=np.int8)
    block = np.empty((n_slots, _ROW_BATCH), dtype=np.int64)
    wide = np.zeros(1, dtype=np.int64)
    row_base = 0
    for piece in pieces:
        pos, buf = piece.start, piece.buf
        while pos < len(buf):
            done = pos
            pos, n_rows, n, status = kernels.scan(
                buf, pos, kinds, slots, limit, block, cell_row, cell_col, cell_vote, emit, wide
            )
            if status != kernels.OK:
                raise _Doubt
            if wide[0]:  # the rows are whole lines, so whole characters
                try:
                    codecs.decode(piece.data[done:pos], "utf-8")
                except UnicodeDecodeError:
                    raise _Doubt from None
                wide[0] = 0
            if n:
                row = cell_row[:n] + np.int32(row_base)
                scanned.cells.append((row, cell_col[:n].copy(), cell_vote[:n].copy()))
            for slot, column in columns.items():
                rows_left = (len(buf) - pos) * n_rows // max(pos - done, 1)
                column.extend(block[slot, :n_rows], rows_left)
            for slot in span_slots:
                scanned.spans.append((piece.data, block[slot : slot + 2, :n_rows].T.copy()))
            row_base += n_rows
            _release(piece, done, pos)
    return scanned


class _Column:
    """A growing array of one dtype, sized ahead from the rows still to come."""

    def __init__(self, dtype: type) -> None:
        self.array: np.ndarray = np.empty(0, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray, expected_more: int) -> None:
        end = self.size + len(values)
        if end > len(self.array):
            wanted = max(end + expected_more + expected_more // 16 + 1024, len(self.array) * 3 // 2)
            grown = np.empty(wanted, dtype=self.array.dtype)
            grown[: self.size] = self.array[: self.size]
            self.array = grown
        self.array[self.size : end] = values
        self.size = end

    def values(self) -> np.ndarray:
        return self.array[: self.size]


def _release(piece: _Piece, start: int, end: int) -> None:
    """Drop the scanned pages of a mapped file from this process (they stay in the page cache),
    so that its resident memory does not grow with the file."""
    if isinstance(piece.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        first = start - start % mmap.PAGESIZE
        last = end - end % mmap.PAGESIZE
        if last > first:
            piece.data.madvise(mmap.MADV_DONTNEED, first, last - first)
