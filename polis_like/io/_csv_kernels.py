"""Compiled scan of plain CSV rows (numba; serial): the fast path of the Pol.is readers.

The scan accepts a strict subset of CSV that Python's csv module reads the same way: no quote
characters, no control characters but line ends ("\\n" or "\\r\\n"), fields no longer than the
csv module's field limit. Each column has a kind (text, integer, id, vote...). Anything outside
that subset, or a value that its column's parse function in ``polis_csv`` would refuse, stops the
scan with ``DOUBT``; the caller then reads the file row by row, which raises the exact error.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
DOUBT = 1

TEXT = 0  # anything (no quotes, no control characters)
INT = 1  # [+-]?[0-9]+ with at most 18 digits (parse_int)
ID = 2  # [0-9]+ up to 2**31 - 1 (parse_id)
VOTE = 3  # 1 0 -1 +1 -0 +0 (parse_vote)
OPT_INT = 4  # blank, or INT (parse_optional_int); blank is stored as NONE
CELL = 5  # blank, or VOTE emitted as a cell (row, cell column, vote)
SPAN = 6  # text whose start and end are stored (in two slots)
FLAG = 7  # text; 1 is stored when not blank

NONE = np.iinfo(np.int64).min
_MAX_ID = 2**31 - 1
_MAX_INT_DIGITS = 18


@njit(cache=True, nogil=True)
def scan(buf, pos, kinds, slots, field_limit, values, cell_row, cell_col, cell_vote, emit, wide):
    """Scan the whole rows of ``buf[pos:]`` (it ends with a line end, or at the end of the file).

    ``kinds[c]`` is the kind of column c and ``slots[c]`` where its value goes: a row of
    ``values`` (shape (slots, max rows)) for INT, ID, VOTE, OPT_INT, FLAG and SPAN (-1: checked
    only), the cell column index for CELL. Cells go to ``cell_*`` when ``emit``; a row starts only
    while ``values`` has a row free and the cell arrays room for a full row.

    Returns (position reached, rows, cells, status): OK at the end of ``buf`` or when full.
    """
    n = len(buf)
    width = len(kinds)
    max_rows = values.shape[1]
    max_cells = len(cell_vote)
    n_cell_columns = 0
    for c in range(width):
        if kinds[c] == CELL:
            n_cell_columns += 1
    rows = 0
    cells = 0
    while pos < n:
        first = buf[pos]
        if first == 10:  # a blank line, skipped as the csv module does
            pos += 1
            continue
        if first == 13:
            if pos + 1 < n and buf[pos + 1] == 10:
                pos += 2
                continue
            return pos, rows, cells, DOUBT
        if rows == max_rows or (emit and cells + n_cell_columns > max_cells):
            return pos, rows, cells, OK
        col = 0
        while True:
            if col >= width:
                return pos, rows, cells, DOUBT  # more fields than the header
            kind = kinds[col]
            if (kind == CELL or kind == TEXT) and pos < n and buf[pos] == 44:
                pos += 1  # a blank cell before a comma: most of participants-votes.csv
                col += 1
                continue
            start = pos
            while pos < n:
                c = buf[pos]
                if c <= 44:  # the bytes that matter are all at most ","
                    if c == 44 or c == 10 or c == 13:
                        break
                    if c < 32 or c == 34:
                        return pos, rows, cells, DOUBT
                elif c >= 128:
                    wide[0] = 1  # not ASCII: the caller checks that the rows are UTF-8
                pos += 1
            end = pos
            if end - start > field_limit:
                return pos, rows, cells, DOUBT
            slot = slots[col]
            if kind == INT or (kind == OPT_INT and end > start):
                i = start
                negative = False
                if i < end and (buf[i] == 43 or buf[i] == 45):
                    negative = buf[i] == 45
                    i += 1
                if end - i < 1 or end - i > _MAX_INT_DIGITS:
                    return pos, rows, cells, DOUBT
                value = 0
                while i < end:
                    d = int(buf[i]) - 48
                    if d < 0 or d > 9:
                        return pos, rows, cells, DOUBT
                    value = value * 10 + d
                    i += 1
                if slot >= 0:
                    values[slot, rows] = -value if negative else value
            elif kind == OPT_INT:
                if slot >= 0:
                    values[slot, rows] = NONE
            elif kind == ID:
                if end == start:
                    return pos, rows, cells, DOUBT
                value = 0
                for i in range(start, end):
                    d = int(buf[i]) - 48
                    if d < 0 or d > 9:
                        return pos, rows, cells, DOUBT
                    value = value * 10 + d
                    if value > _MAX_ID:
                        return pos, rows, cells, DOUBT
                if slot >= 0:
                    values[slot, rows] = value
            elif kind == VOTE or (kind == CELL and end > start):
                length = end - start
                if length < 1 or length > 2:
                    return pos, rows, cells, DOUBT
                d = int(buf[end - 1]) - 48
                if d < 0 or d > 1:
                    return pos, rows, cells, DOUBT
                if length == 2:
                    sign = buf[start]
                    if sign == 45:
                        d = -d
                    elif sign != 43:
                        return pos, rows, cells, DOUBT
                if kind == VOTE:
                    if slot >= 0:
                        values[slot, rows] = d
                elif emit:
                    cell_row[cells] = rows
                    cell_col[cells] = slot
                    cell_vote[cells] = d
                    cells += 1
            elif kind == SPAN:
                values[slot, rows] = start
                values[slot + 1, rows] = end
            elif kind == FLAG:
                if slot >= 0:
                    values[slot, rows] = 1 if end > start else 0
            col += 1
            if pos >= n:
                break
            c = buf[pos]
            if c == 44:
                pos += 1
                continue
            if c == 13:
                if pos + 1 < n and buf[pos + 1] == 10:
                    pos += 2
                    break
                return pos, rows, cells, DOUBT
            pos += 1  # "\n"
            break
        if col != width:
            return pos, rows, cells, DOUBT  # fewer fields than the header
        rows += 1
    return pos, rows, cells, OK
