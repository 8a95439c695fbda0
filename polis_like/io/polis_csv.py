"""The Pol.is export format: file and column names, CSV records with line numbers, datetimes.

The layout follows what Pol.is writes (``math/src/polismath/darwin/export.clj`` in
compdemocracy/polis); ``read`` and ``write`` share these definitions.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from polis_like.errors import InputError

VOTES = "votes.csv"
COMMENTS = "comments.csv"
PARTICIPANTS_VOTES = "participants-votes.csv"
SUMMARY = "summary.csv"
STATS_HISTORY = "stats-history.csv"

VOTES_COLUMNS = ("timestamp", "datetime", "comment-id", "voter-id", "vote")
COMMENTS_COLUMNS = (
    "timestamp",
    "datetime",
    "comment-id",
    "author-id",
    "agrees",
    "disagrees",
    "moderated",
    "comment-body",
)
IS_META = "is-meta"  # our extension: Pol.is has no meta column in comments.csv
PARTICIPANT_COLUMNS = ("participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree")
XID = "xid"
SUMMARY_KEYS = (
    "topic",
    "url",
    "views",
    "voters",
    "voters-in-conv",
    "commenters",
    "comments",
    "groups",
    "conversation-description",
)
SUMMARY_NUMERIC = frozenset(
    {"views", "voters", "voters-in-conv", "commenters", "comments", "groups"}
)
# Pol.is writes one row per event (vote, participant joining, comment) in time order, with
# cumulative counts and no time column (export.clj, stats-history and csv-format).
STATS_HISTORY_COLUMNS = ("n-votes", "n-comments", "n-visitors", "n-voters", "n-commenters")

_ID = re.compile(r"[0-9]+")
_INT = re.compile(r"[+-]?[0-9]+")
_VOTES = {"1": 1, "0": 0, "-1": -1, "+1": 1, "-0": 0, "+0": 0}
_TRUE_FALSE = {"1": True, "true": True, "0": False, "false": False, "": False}
#: The format's integers (timestamps, counts, group ids) are 64-bit; ids are text (storage checks
#: their range), ordered by `canonical_ids` without converting them.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_INT64_DIGITS = 19
_SHOWN = 30


def _shown(value: str) -> str:
    """A value for a one-line message: its repr, a long one cut short."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def decode(data: bytes, path: str) -> str:
    """The text of a UTF-8 file (a leading byte order mark dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        raise InputError(f"not UTF-8 text (byte {error.start})", path=path, line=line) from None


def records(text: str, path: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank CSV record with the 1-based physical line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            reason = str(error)
            if reason == "unexpected end of data":
                reason = "a quoted field is never closed"
            raise InputError(f"malformed CSV: {reason}", path=path, line=start) from None
        if row:
            yield start, row
        start = reader.line_num + 1


class Table:
    """A CSV file with a header row: column positions by name, and its rows with line numbers."""

    def __init__(self, data: bytes, path: str, required: Iterable[str]) -> None:
        self.path = path
        self._records = records(decode(data, path), path)
        first = next(self._records, None)
        if first is None:
            raise InputError("empty file (no header row)", path=path, line=1)
        self.header_line, header = first
        self.header = [name.strip() for name in header]
        self.columns: dict[str, int] = {}
        for i, name in enumerate(self.header):
            if name in self.columns and name:
                raise InputError(f"column {name!r} appears twice", path=path, line=self.header_line)
            self.columns[name] = i
        missing = [name for name in required if name not in self.columns]
        if missing:
            message = f"missing required column(s): {', '.join(missing)}"
            raise InputError(message, path=path, line=self.header_line)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Each data row with its line, checked to have as many fields as the header."""
        width = len(self.header)
        for line, row in self._records:
            if len(row) != width:
                raise InputError(
                    f"{len(row)} fields where the header has {width}", path=self.path, line=line
                )
            yield line, row


def parse_id(value: str, column: str, path: str, line: int) -> str:
    """A participant or comment id: a non-negative integer, without leading zeros."""
    if _ID.fullmatch(value) is None:
        raise InputError(f"{column} {value!r} is not a non-negative integer", path=path, line=line)
    return value.lstrip("0") or "0"


def parse_int(value: str, column: str, path: str, line: int) -> int:
    """An integer (timestamps, counts, group ids)."""
    if _INT.fullmatch(value) is None:
        raise InputError(f"{column} {value!r} is not an integer", path=path, line=line)
    digits = value.lstrip("+-").lstrip("0")
    number = int(value) if len(digits) <= _INT64_DIGITS else None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        message = f"{column} {_shown(value)} is out of range (a 64-bit integer)"
        raise InputError(message, path=path, line=line)
    return number


def parse_optional_int(value: str, column: str, path: str, line: int) -> int | None:
    """An integer, or None for a blank field."""
    return None if value == "" else parse_int(value, column, path, line)


def parse_vote(value: str, column: str, path: str, line: int) -> int:
    """A vote or moderation value: -1, 0 or 1."""
    vote = _VOTES.get(value)
    if vote is None:
        parse_int(value, column, path, line)
        raise InputError(f"{column} {value!r} is not -1, 0 or 1", path=path, line=line)
    return vote


def parse_flag(value: str, column: str, path: str, line: int) -> bool:
    """A yes/no column: 1/0 or true/false (blank is no)."""
    flag = _TRUE_FALSE.get(value.strip().lower())
    if flag is None:
        raise InputError(f"{column} {value!r} is not 1/0 or true/false", path=path, line=line)
    return flag


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def polis_datetime(timestamp_ms: int) -> str:
    """A timestamp as Pol.is prints it (Java's Date.toString), in UTC.

    For example "Tue Jun 30 08:49:52 UTC 2015"; empty for a time the platform cannot represent.
    """
    try:
        t = time.gmtime(timestamp_ms // 1000)
    except (OverflowError, OSError, ValueError):
        return ""
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"
    )


class RowWriter:
    """csv.writer with lineterminator "\n" that also quotes fields holding a lone carriage return.

    The csv module quotes only the characters of its line terminator, so a "\r" in a comment
    body would be written bare and split the record when read back. Each row is therefore
    formatted with a "\r\n" terminator (quoting both) and written with "\n" instead.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def line(self, row: Iterable[object]) -> str:
        """One record as :meth:`writerow` writes it, without its line end."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(row)
        return self._buffer.getvalue()[:-2]

    def writerow(self, row: Iterable[object]) -> None:
        """Write one record."""
        self._file.write(self.line(row) + "\n")
