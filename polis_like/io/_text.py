"""CSV cells of many rows at once, as numpy arrays of ASCII bytes: no Python object per cell.

A column of ``n`` cells is an ``(n, width)`` uint8 array whose NUL bytes are padding;
:func:`join_rows` lays columns side by side, drops the NULs and gives the text. The exports'
large files (votes.csv, stats-history.csv: millions of rows of numbers and dates) are written
this way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polis_like.io.polis_csv import polis_datetime

COMMA = np.array([[44]], dtype=np.uint8)
NEWLINE = np.array([[10]], dtype=np.uint8)

_DAYS = np.frombuffer(b"MonTueWedThuFriSatSun", dtype=np.uint8).reshape(7, 3)
_MONTHS = np.frombuffer(b"JanFebMarAprMayJunJulAugSepOctNovDec", dtype=np.uint8).reshape(12, 3)
#: Seconds of 1000-01-01 and 10000-01-01 (UTC): between them a year has four digits, and
#: :func:`datetimes` computes the text itself; outside, :func:`polis_datetime` does.
_FOUR_DIGIT_YEARS = (-30_610_224_000, 253_402_300_800)
_DATETIME_WIDTH = 28  # "Tue Jun 30 08:49:52 UTC 2015"


def table(texts: Sequence[str]) -> np.ndarray:
    """ASCII texts as the rows of an ``(n, longest)`` array (NUL-padded), to gather from."""
    if not texts:
        return np.zeros((0, 1), dtype=np.uint8)
    encoded = np.array([t.encode("ascii") for t in texts], dtype=bytes)
    return encoded.view(np.uint8).reshape(len(texts), max(encoded.itemsize, 1))


def decimals(values: np.ndarray) -> np.ndarray:
    """Integers as their decimal text (as ``str(int)`` writes them), one row each."""
    values = np.asarray(values, dtype=np.int64)
    if not len(values):
        return np.zeros((0, 1), dtype=np.uint8)
    negative = values < 0
    if negative.any():
        if values.min() == np.iinfo(np.int64).min:  # no int64 magnitude
            return table([str(v) for v in values.tolist()])
        sign = np.where(negative, 45, 0).astype(np.uint8)[:, None]
        return np.hstack([sign, decimals(np.abs(values))])
    width = len(str(int(values.max())))
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        np.remainder(rest, 10, out=out[:, k], casting="unsafe")
        rest //= 10
    out += 48
    if width > 1:  # leading zeros are padding; the last digit always stays
        leading = np.logical_and.accumulate(out[:, :-1] == 48, axis=1)
        out[:, :-1][leading] = 0
    return out


def _two_digits(values: np.ndarray) -> np.ndarray:
    return np.stack([values // 10 + 48, values % 10 + 48], axis=1).astype(np.uint8)


def datetimes(timestamp_ms: np.ndarray) -> np.ndarray:
    """:func:`polis_datetime` of each timestamp (ms), one row each (all NUL: no text)."""
    seconds = np.asarray(timestamp_ms, dtype=np.int64) // 1000
    inside = (seconds >= _FOUR_DIGIT_YEARS[0]) & (seconds < _FOUR_DIGIT_YEARS[1])
    days, second = np.divmod(np.where(inside, seconds, 0), 86_400)
    date = days.astype("datetime64[D]")
    month_start = date.astype("datetime64[M]")
    year = month_start.astype("datetime64[Y]").astype(np.int64) + 1970
    out = np.empty((len(seconds), _DATETIME_WIDTH), dtype=np.uint8)
    out[:, 0:3] = _DAYS[(days + 3) % 7]  # 1970-01-01 was a Thursday
    out[:, 4:7] = _MONTHS[month_start.astype(np.int64) % 12]
    out[:, 8:10] = _two_digits((date - month_start).astype(np.int64) + 1)
    out[:, 11:13] = _two_digits(second // 3600)
    out[:, 14:16] = _two_digits(second // 60 % 60)
    out[:, 17:19] = _two_digits(second % 60)
    out[:, 20:23] = np.frombuffer(b"UTC", dtype=np.uint8)
    out[:, 24:28] = decimals(year)[:, -4:]
    out[:, [3, 7, 10, 19, 23]] = 32
    out[:, [13, 16]] = 58
    if not inside.all():
        outside = np.flatnonzero(~inside)
        texts = table([polis_datetime(int(ms)) for ms in np.asarray(timestamp_ms)[outside]])
        wider = max(_DATETIME_WIDTH, texts.shape[1])
        out = np.hstack([out, np.zeros((len(out), wider - _DATETIME_WIDTH), dtype=np.uint8)])
        out[outside] = 0
        out[outside, : texts.shape[1]] = texts
    return out


def join_rows(columns: Sequence[np.ndarray]) -> str:
    """The rows of side-by-side columns (each ``(n, width)``, or ``(1, width)`` for the same
    bytes in every row), their NUL padding dropped, as one text."""
    n = max(len(c) for c in columns)
    rows = np.hstack([np.broadcast_to(c, (n, c.shape[1])) for c in columns])
    return rows[rows != 0].tobytes().decode("ascii")
