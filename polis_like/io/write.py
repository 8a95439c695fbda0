"""Write a :class:`Conversation` as the five files of a Pol.is export."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from polis_like.conversation import Conversation, Statement, VoteEvents, canonical_ids
from polis_like.errors import InputError
from polis_like.io import _text
from polis_like.io.polis_csv import (
    COMMENTS,
    COMMENTS_COLUMNS,
    IS_META,
    PARTICIPANT_COLUMNS,
    PARTICIPANTS_VOTES,
    STATS_HISTORY,
    STATS_HISTORY_COLUMNS,
    SUMMARY,
    SUMMARY_KEYS,
    SUMMARY_NUMERIC,
    VOTES,
    VOTES_COLUMNS,
    XID,
    RowWriter,
    polis_datetime,
)

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): Excel and
#: LibreOffice run ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)`` or ``-2+3`` when the file is
#: opened, and a tab or carriage return can hide one of these behind it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_INTEGER = re.compile(r"[+-]?[0-9]+")

_Text = Callable[[str], str]


def defuse_formula(text: str) -> str:
    """``text`` with a leading ``'`` when it begins like a formula, so a spreadsheet shows it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _as_stored(text: str) -> str:
    return text


@dataclass
class ExportSource:
    """A conversation to write as an export, whose votes come in chunks, so that no file (nor
    the votes) is ever held in memory whole: memory stays flat in the number of votes.

    Participants and statements are given whole (indices into these lists are what the chunks
    hold); the votes are read twice, by the two iterables.
    """

    summary: dict[str, str]
    statements: list[Statement]
    participant_ids: list[str]
    xids: dict[str, str]
    has_timestamps: bool
    #: Each participant's first vote time (``NO_VOTE`` when they never voted), by index.
    first_vote_ms: np.ndarray
    #: Every vote event in time order (ties in the order they were cast), in chunks.
    events: Iterable[VoteEvents]
    #: Each participant's latest vote on each statement (the one latest-vote rule), as
    #: (participant, statement, vote) chunks sorted by the participant's position in canonical
    #: id order, then by statement.
    latest: Iterable[_Latest]


#: :attr:`ExportSource.first_vote_ms` of a participant who never voted.
NO_VOTE = np.iinfo(np.int64).max
#: Events or latest votes of a chunk made from a whole conversation in memory.
CHUNK = 200_000
#: Cells of participants-votes.csv formatted at a time.
BLOCK_CELLS = 1 << 21


def write_export(
    conversation: Conversation,
    folder: str | os.PathLike[str],
    *,
    groups: Mapping[str, int | None] | None = None,
    in_conversation: int | None = None,
    exact: bool = False,
) -> None:
    """Write ``conversation`` into ``folder`` as the five CSV files of a Pol.is export.

    The files are votes, comments, participants-votes, summary and stats-history, in UTF-8
    with RFC 4180 quoting and "\\n" line ends. ``groups`` (participant id -> group id or None)
    fills the group-id column in place of the conversation's ``reference_groups``;
    ``in_conversation`` is summary.csv's voters-in-conv.

    Text cells (comment bodies, xids, the summary's topic, url, description and other rows) that
    begin like a formula are written through :func:`defuse_formula`, unless ``exact``: then
    every text is written as it is, as Pol.is does, for another server to import. Numbers (ids,
    votes, counts, times) are never changed.
    """
    if groups is None:
        groups = conversation.reference_groups
    write_source(
        _source(conversation), folder, groups=groups, in_conversation=in_conversation, exact=exact
    )


def write_source(
    source: ExportSource,
    folder: str | os.PathLike[str],
    *,
    groups: Mapping[str, int | None],
    in_conversation: int | None = None,
    exact: bool = False,
) -> None:
    """Write ``source`` into ``folder`` as :func:`write_export` does, a chunk at a time."""
    folder = os.fspath(folder)
    _check_ids(source, folder)
    os.makedirs(folder, exist_ok=True)
    text = _as_stored if exact else defuse_formula
    with _open(folder, PARTICIPANTS_VOTES) as file:
        written_groups, agrees, disagrees = _write_participants_votes(file, source, groups, text)
    with _open(folder, COMMENTS) as file:
        _write_comments(file, source, agrees, disagrees, text)
    with _open(folder, SUMMARY) as file:
        _write_summary(file, source, written_groups, in_conversation, text)
    with _open(folder, VOTES) as votes, _open(folder, STATS_HISTORY) as history:
        _write_votes_and_history(votes, history, source)


_Latest = tuple[np.ndarray, np.ndarray, np.ndarray]  # participant, statement, vote


def _source(conversation: Conversation) -> ExportSource:
    """A conversation in memory as an :class:`ExportSource`."""
    votes = conversation.votes
    n_participants = len(conversation.participant_ids)
    first = np.full(n_participants, NO_VOTE, dtype=np.int64)
    np.minimum.at(first, votes.participant, votes.timestamp_ms)
    return ExportSource(
        summary=conversation.summary,
        statements=conversation.statements,
        participant_ids=conversation.participant_ids,
        xids=conversation.xids,
        has_timestamps=conversation.has_timestamps,
        first_vote_ms=first,
        events=_time_ordered(votes),
        latest=_latest_chunks(conversation),
    )


def _time_ordered(votes: VoteEvents) -> Iterator[VoteEvents]:
    order = votes.time_order()
    for start in range(0, len(order), CHUNK):
        yield votes.take(order[start : start + CHUNK])


def _latest_chunks(conversation: Conversation) -> Iterator[_Latest]:
    """Each participant's latest vote on each statement, by (canonical position, statement).

    The same rule as the math's (``polis_like.math.matrix.latest_votes``): the largest timestamp
    wins, and among equal timestamps the larger vote, whatever the order of the events.
    """
    from polis_like.math.matrix import CODE_OFFSET, latest_votes  # scipy.sparse: only here

    codes = latest_votes(
        conversation.votes, len(conversation.participant_ids), len(conversation.statements)
    )
    participant = np.repeat(np.arange(codes.shape[0], dtype=np.int32), np.diff(codes.indptr))
    rank = _participant_rank(conversation.participant_ids)
    order = np.argsort(rank[participant], kind="stable")
    statement, vote = codes.indices, codes.data.astype(np.int8) - CODE_OFFSET
    for start in range(0, len(order), CHUNK):
        at = order[start : start + CHUNK]
        yield participant[at], statement[at], vote[at]


def _participant_rank(participant_ids: list[str]) -> np.ndarray:
    """Each participant's position in canonical id order (participants-votes.csv's rows)."""
    index = {pid: i for i, pid in enumerate(participant_ids)}
    rank = np.empty(len(participant_ids), dtype=np.int64)
    rank[[index[pid] for pid in canonical_ids(participant_ids)]] = np.arange(len(participant_ids))
    return rank


def _open(folder: str, name: str) -> TextIO:
    return open(os.path.join(folder, name), "w", encoding="utf-8", newline="")


def _check_ids(conversation: ExportSource, folder: str) -> None:
    """Pol.is ids are non-negative integers; anything else could not be read back."""
    ids = [("participant", p) for p in conversation.participant_ids]
    ids += [("statement", s.id) for s in conversation.statements]
    ids += [("author", s.author_id) for s in conversation.statements if s.author_id is not None]
    for kind, value in ids:
        if not (value.isascii() and value.isdigit()):
            message = f"{kind} id {value!r} is not a non-negative integer, as Pol.is needs"
            raise InputError(message, path=folder)


def _statement_order(conversation: ExportSource) -> list[int]:
    """Indices of the statements in canonical id order."""
    index = {s.id: i for i, s in enumerate(conversation.statements)}
    return [index[sid] for sid in canonical_ids([s.id for s in conversation.statements])]


def _write_comments(
    file: TextIO, source: ExportSource, agrees: np.ndarray, disagrees: np.ndarray, text: _Text
) -> None:
    with_meta = any(s.is_meta for s in source.statements)
    writer = RowWriter(file)
    writer.writerow(COMMENTS_COLUMNS + ((IS_META,) if with_meta else ()))
    for i in _statement_order(source):
        s = source.statements[i]
        created = "" if s.created_ms is None else s.created_ms
        row = [
            created,
            "" if s.created_ms is None else polis_datetime(s.created_ms),
            s.id,
            s.author_id or "",
            agrees[i],
            disagrees[i],
            int(s.moderation),
            text(s.text),
        ]
        writer.writerow(row + ([int(s.is_meta)] if with_meta else []))


def _vote_cells(
    n_rows: int, n_columns: int, row: np.ndarray, column: np.ndarray, vote: np.ndarray
) -> tuple[list[int], str]:
    """The vote cells of ``n_rows`` rows of participants-votes.csv, each cell followed by a
    comma (a row's text ends at its entry of the returned ends), from the votes' rows, columns
    and values (one vote a cell at most). Only the votes are placed: the blank cells are the
    commas the text starts as."""
    order = np.lexsort((column, row))
    row, column, vote = row[order], column[order], vote[order]
    width = np.where(vote == -1, 2, 1)  # "-1", "0", "1"
    row_length = n_columns + np.bincount(row, weights=width, minlength=n_rows).astype(np.int64)
    ends = np.cumsum(row_length)
    text = np.full(int(ends[-1]) if n_rows else 0, 44, dtype=np.uint8)
    before = np.cumsum(width) - width  # the widths of the votes placed before each
    row_first = np.searchsorted(row, np.arange(n_rows))  # each row's first vote
    offset = (ends - row_length)[row] + column + before - before[row_first[row]]
    text[offset] = np.where(vote == -1, 45, vote + 48)
    text[offset[vote == -1] + 1] = 49
    return ends.tolist(), text.tobytes().decode("ascii")


def _write_participants_votes(
    file: TextIO, source: ExportSource, groups: Mapping[str, int | None], text: _Text
) -> tuple[dict[str, int | None], np.ndarray, np.ndarray]:
    """Write the vote matrix, a block of participants at a time; return the group of each
    participant written, and each statement's agrees and disagrees."""
    participant_ids = source.participant_ids
    n_participants, n_statements = len(participant_ids), len(source.statements)
    rank = _participant_rank(participant_ids)
    row_of = np.empty(n_participants, dtype=np.int64)  # participant index of each row
    row_of[rank] = np.arange(n_participants)
    authored = Counter(s.author_id for s in source.statements if s.author_id is not None)
    columns = _statement_order(source)
    position = np.empty(len(columns), dtype=np.int64)
    position[columns] = np.arange(len(columns))
    agrees = np.zeros(n_statements, dtype=np.int64)
    disagrees = np.zeros(n_statements, dtype=np.int64)

    with_xid = any(source.xids.get(pid) for pid in participant_ids)
    header = list(PARTICIPANT_COLUMNS)
    if with_xid:
        header.insert(1, XID)
    writer = RowWriter(file)
    writer.writerow(header + [source.statements[i].id for i in columns])
    written: dict[str, int | None] = {}
    block_rows = max(1, BLOCK_CELLS // max(1, len(columns)))

    def write_rows(first: int, end: int, rows: np.ndarray, statement: np.ndarray, vote: np.ndarray):
        """Rows ``first`` to ``end`` (exclusive), whose votes these are (rows sorted)."""
        for block in range(first, end, block_rows):
            block_end = min(block + block_rows, end)
            lo, hi = np.searchsorted(rows, [block, block_end])
            at, s, v = rows[lo:hi] - block, statement[lo:hi], vote[lo:hi]
            size = block_end - block
            n_votes = np.bincount(at, minlength=size).tolist()
            n_agree = np.bincount(at[v == 1], minlength=size).tolist()
            n_disagree = np.bincount(at[v == -1], minlength=size).tolist()
            ends, data = _vote_cells(size, len(columns), at, position[s], v)
            lines = []
            start = 0
            for k in range(size):
                i = int(row_of[block + k])
                pid = participant_ids[i]
                # Authors who never voted nor were grouped live on in comments.csv; Pol.is
                # leaves them out.
                if n_votes[k] == 0 and pid not in groups and authored[pid]:
                    start = ends[k]
                    continue
                group = groups.get(pid)
                written[pid] = group
                row: list[object] = [
                    pid,
                    "" if group is None else group,
                    authored[pid],
                    n_votes[k],
                    n_agree[k],
                    n_disagree[k],
                ]
                if with_xid:
                    row.insert(1, text(source.xids.get(pid, "")))
                line = writer.line(row)
                if columns:
                    line += "," + data[start : ends[k] - 1]
                start = ends[k]
                lines.append(line + "\n")
            file.write("".join(lines))

    done = 0  # the rows written
    carry: _Latest = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    for chunk in source.latest:
        participant, statement, vote = (
            np.concatenate([old, np.asarray(new, dtype=np.int64)])
            for old, new in zip(carry, chunk, strict=True)
        )
        if not len(participant):
            continue
        rows = rank[participant]
        # the last participant's votes may go on in the next chunk
        last = np.searchsorted(rows, rows[-1])
        carry = (participant[last:], statement[last:], vote[last:])
        _count(agrees, disagrees, statement[:last], vote[:last])
        write_rows(done, int(rows[-1]), rows[:last], statement[:last], vote[:last])
        done = int(rows[-1])
    participant, statement, vote = carry
    _count(agrees, disagrees, statement, vote)
    write_rows(done, n_participants, rank[participant], statement, vote)
    return written, agrees, disagrees


def _count(agrees: np.ndarray, disagrees: np.ndarray, statement: np.ndarray, vote: np.ndarray):
    agrees += np.bincount(statement[vote == 1], minlength=len(agrees))
    disagrees += np.bincount(statement[vote == -1], minlength=len(disagrees))


def _write_summary(
    file: TextIO,
    source: ExportSource,
    groups: dict[str, int | None],
    in_conversation: int | None,
    text: _Text,
) -> None:
    summary = source.summary
    grouped = [g for g in groups.values() if g is not None]
    authors = {s.author_id for s in source.statements if s.author_id is not None}
    voters_in_conv: int | str  # without a count of ours, the export's own figure as it was read
    if in_conversation is not None:
        voters_in_conv = in_conversation
    else:
        voters_in_conv = summary.get("voters-in-conv") or len(grouped)
    counted = {
        "voters": int((source.first_vote_ms != NO_VOTE).sum()),
        "voters-in-conv": voters_in_conv,
        "commenters": len(authors),
        "comments": len(source.statements),
        "groups": len(set(grouped)),
    }

    def cell(key: str, value: str) -> str:
        # The readers checked the numeric rows; a value that is not an integer is text.
        if key in SUMMARY_NUMERIC and _INTEGER.fullmatch(value):
            return value
        return text(value)

    writer = RowWriter(file)
    for key in SUMMARY_KEYS:
        value = counted[key] if key in counted else summary.get(key, "")
        writer.writerow([key, cell(key, str(value))])
    for key, value in summary.items():
        if key not in SUMMARY_KEYS:
            writer.writerow([text(key), cell(key, value)])


def _write_votes_and_history(votes_file: TextIO, history_file: TextIO, source: ExportSource):
    """votes.csv, and stats-history.csv: cumulative counts after each event (a participant's
    arrival, comment, vote) in time order; one pass over the events.

    Without real vote times (votes made up from participants-votes.csv) there is no history to
    tell, so only the header is written.
    """
    csv.writer(votes_file, lineterminator="\n").writerow(VOTES_COLUMNS)
    csv.writer(history_file, lineterminator="\n").writerow(STATS_HISTORY_COLUMNS)
    participant_text = _text.table(source.participant_ids)
    statement_text = _text.table([s.id for s in source.statements])
    history = _History(source) if source.has_timestamps else None
    for events in source.events:
        if not len(events):
            continue
        ms = events.timestamp_ms
        # No cell here needs quoting (ids are digits, checked), so no csv.writer: whole columns
        # are formatted at once.
        stamps = [_text.datetimes(ms)] if source.has_timestamps else []
        columns = [_text.decimals(ms), _text.COMMA, *stamps, _text.COMMA]
        columns += [statement_text[events.statement], _text.COMMA]
        columns += [participant_text[events.participant], _text.COMMA]
        columns += [_text.decimals(events.vote), _text.NEWLINE]
        votes_file.write(_text.join_rows(columns))
        if history is not None:
            history_file.write(history.votes(events))
    if history is not None:
        history_file.write(history.rest())


class _History:
    """The rows of stats-history.csv, as the time-ordered votes come: each chunk of votes is
    merged with the arrivals and comments up to its last time (which sort before votes of the
    same time)."""

    def __init__(self, source: ExportSource) -> None:
        participant_index = {pid: i for i, pid in enumerate(source.participant_ids)}
        dated = [s for s in source.statements if s.created_ms is not None]
        comment_time = np.array([s.created_ms for s in dated], dtype=np.int64)
        authors = [participant_index.get(s.author_id, -1) if s.author_id else -1 for s in dated]
        comment_who = np.array(authors, dtype=np.int64)
        # A participant's arrival is their first vote or comment (the export has no visit times).
        first = source.first_vote_ms.astype(np.int64, copy=True)
        known = comment_who >= 0
        np.minimum.at(first, comment_who[known], comment_time[known])
        arrived = first != NO_VOTE
        # kind: 0 participant arrives, 1 comment, 2 vote (that order among equal times)
        time = np.concatenate([first[arrived], comment_time])
        kind = np.concatenate(
            [np.zeros(arrived.sum(), dtype=np.int8), np.ones(len(dated), dtype=np.int8)]
        )
        who = np.concatenate([np.flatnonzero(arrived), comment_who])
        order = np.lexsort((kind, time))
        self.time, self.kind, self.who = time[order], kind[order], who[order]
        self.next = 0  # the first arrival or comment not written yet
        self.counts = np.zeros(5, dtype=np.int64)  # votes, comments, visitors, voters, commenters
        self.voted = np.zeros(len(source.participant_ids), dtype=bool)
        self.commented = np.zeros(len(source.participant_ids), dtype=bool)

    def votes(self, events: VoteEvents) -> str:
        """The rows up to these votes (in time order, after every earlier chunk's)."""
        end = int(np.searchsorted(self.time, events.timestamp_ms[-1], side="right"))
        return self._rows(end, events.timestamp_ms, events.participant)

    def rest(self) -> str:
        """The rows of the arrivals and comments after the last vote."""
        return self._rows(len(self.time), np.empty(0, np.int64), np.empty(0, np.int64))

    def _rows(self, end: int, vote_time: np.ndarray, voter: np.ndarray) -> str:
        start, self.next = self.next, end
        time = np.concatenate([self.time[start:end], vote_time])
        kind = np.concatenate([self.kind[start:end], np.full(len(vote_time), 2, dtype=np.int8)])
        who = np.concatenate([self.who[start:end], voter.astype(np.int64)])
        if not len(time):
            return ""
        order = np.lexsort((kind, time))
        kind, who = kind[order], who[order]
        new_voter = _first_of_each(who, kind == 2, self.voted)
        new_commenter = _first_of_each(who, (kind == 1) & (who >= 0), self.commented)
        columns = [
            np.cumsum(kind == 2) + self.counts[0],
            np.cumsum(kind == 1) + self.counts[1],
            np.cumsum(kind == 0) + self.counts[2],
            np.cumsum(new_voter) + self.counts[3],
            np.cumsum(new_commenter) + self.counts[4],
        ]
        self.counts = np.array([c[-1] for c in columns], dtype=np.int64)
        cells = [part for c in columns for part in (_text.decimals(c), _text.COMMA)]
        return _text.join_rows(cells[:-1] + [_text.NEWLINE])


def _first_of_each(who: np.ndarray, mask: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Mask of the positions where ``mask`` holds and ``who`` appears there for the first time,
    nor was ``seen`` before (``seen`` is updated)."""
    first = np.zeros(len(who), dtype=bool)
    positions = np.flatnonzero(mask)
    _, at = np.unique(who[positions], return_index=True)
    at = positions[at]
    at = at[~seen[who[at]]]
    first[at] = True
    seen[who[at]] = True
    return first
