"""Write a :class:`Conversation` as the five files of a Pol.is export."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TextIO

import numpy as np

from polis_like.conversation import Conversation, canonical_ids
from polis_like.errors import InputError
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
from polis_like.math.matrix import CODE_OFFSET, latest_votes

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
    folder = os.fspath(folder)
    _check_ids(conversation, folder)
    os.makedirs(folder, exist_ok=True)
    if groups is None:
        groups = conversation.reference_groups
    text = _as_stored if exact else defuse_formula
    latest = _latest(conversation)
    with _open(folder, VOTES) as file:
        _write_votes(file, conversation)
    with _open(folder, COMMENTS) as file:
        _write_comments(file, conversation, latest, text)
    with _open(folder, PARTICIPANTS_VOTES) as file:
        written_groups = _write_participants_votes(file, conversation, latest, groups, text)
    with _open(folder, SUMMARY) as file:
        _write_summary(file, conversation, written_groups, in_conversation, text)
    with _open(folder, STATS_HISTORY) as file:
        _write_stats_history(file, conversation)


_Latest = tuple[np.ndarray, np.ndarray, np.ndarray]  # participant, statement, vote


def _open(folder: str, name: str) -> TextIO:
    return open(os.path.join(folder, name), "w", encoding="utf-8", newline="")


def _check_ids(conversation: Conversation, folder: str) -> None:
    """Pol.is ids are non-negative integers; anything else could not be read back."""
    ids = [("participant", p) for p in conversation.participant_ids]
    ids += [("statement", s.id) for s in conversation.statements]
    ids += [("author", s.author_id) for s in conversation.statements if s.author_id is not None]
    for kind, value in ids:
        if not (value.isascii() and value.isdigit()):
            message = f"{kind} id {value!r} is not a non-negative integer, as Pol.is needs"
            raise InputError(message, path=folder)


def _latest(conversation: Conversation) -> _Latest:
    """Each participant's latest vote on each statement, sorted by (participant, statement).

    The same rule as the math's (``polis_like.math.matrix.latest_votes``): the largest timestamp
    wins, and among equal timestamps the larger vote, whatever the order of the events.
    """
    codes = latest_votes(
        conversation.votes, len(conversation.participant_ids), len(conversation.statements)
    )
    participant = np.repeat(np.arange(codes.shape[0], dtype=np.int32), np.diff(codes.indptr))
    return participant, codes.indices, codes.data.astype(np.int8) - CODE_OFFSET


def _write_votes(file: TextIO, conversation: Conversation) -> None:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(VOTES_COLUMNS)
    events = conversation.votes.take(conversation.votes.time_order())
    participant_ids = conversation.participant_ids
    statement_ids = [s.id for s in conversation.statements]
    stamp = polis_datetime if conversation.has_timestamps else (lambda ms: "")
    writer.writerows(
        (ms, stamp(ms), statement_ids[s], participant_ids[p], v)
        for ms, s, p, v in zip(
            events.timestamp_ms.tolist(),
            events.statement.tolist(),
            events.participant.tolist(),
            events.vote.tolist(),
            strict=True,
        )
    )


def _statement_order(conversation: Conversation) -> list[int]:
    """Indices of the statements in canonical id order."""
    index = conversation.statement_index()
    return [index[sid] for sid in canonical_ids([s.id for s in conversation.statements])]


def _write_comments(file: TextIO, conversation: Conversation, latest: _Latest, text: _Text) -> None:
    _, statement, vote = latest
    n = len(conversation.statements)
    agrees = np.bincount(statement[vote == 1], minlength=n)
    disagrees = np.bincount(statement[vote == -1], minlength=n)
    with_meta = any(s.is_meta for s in conversation.statements)
    writer = RowWriter(file)
    writer.writerow(COMMENTS_COLUMNS + ((IS_META,) if with_meta else ()))
    for i in _statement_order(conversation):
        s = conversation.statements[i]
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


def _write_participants_votes(
    file: TextIO,
    conversation: Conversation,
    latest: _Latest,
    groups: Mapping[str, int | None],
    text: _Text,
) -> dict[str, int | None]:
    """Write the vote matrix; return the group of each participant written."""
    participant, statement, vote = latest
    n_participants = len(conversation.participant_ids)
    n_votes = np.bincount(participant, minlength=n_participants)
    n_agree = np.bincount(participant[vote == 1], minlength=n_participants)
    n_disagree = np.bincount(participant[vote == -1], minlength=n_participants)
    authored = Counter(s.author_id for s in conversation.statements if s.author_id is not None)
    columns = _statement_order(conversation)
    position = np.empty(len(columns), dtype=np.int64)
    position[columns] = np.arange(len(columns))
    starts = np.searchsorted(participant, np.arange(n_participants + 1))
    cells_at, cells = position[statement].tolist(), vote.tolist()

    with_xid = any(conversation.xids.get(pid) for pid in conversation.participant_ids)
    header = list(PARTICIPANT_COLUMNS)
    if with_xid:
        header.insert(1, XID)
    writer = RowWriter(file)
    writer.writerow(header + [conversation.statements[i].id for i in columns])
    index = {pid: i for i, pid in enumerate(conversation.participant_ids)}
    written: dict[str, int | None] = {}
    for pid in canonical_ids(conversation.participant_ids):
        i = index[pid]
        # Authors who never voted nor were grouped live on in comments.csv; Pol.is leaves them out.
        if n_votes[i] == 0 and pid not in groups and authored[pid]:
            continue
        group = groups.get(pid)
        written[pid] = group
        row: list[object] = [
            pid,
            "" if group is None else group,
            authored[pid],
            n_votes[i],
            n_agree[i],
            n_disagree[i],
        ]
        if with_xid:
            row.insert(1, text(conversation.xids.get(pid, "")))
        cells_row: list[object] = [""] * len(columns)
        for k in range(starts[i], starts[i + 1]):
            cells_row[cells_at[k]] = cells[k]
        writer.writerow(row + cells_row)
    return written


def _write_summary(
    file: TextIO,
    conversation: Conversation,
    groups: dict[str, int | None],
    in_conversation: int | None,
    text: _Text,
) -> None:
    summary = conversation.summary
    grouped = [g for g in groups.values() if g is not None]
    authors = {s.author_id for s in conversation.statements if s.author_id is not None}
    voters_in_conv: int | str  # without a count of ours, the export's own figure as it was read
    if in_conversation is not None:
        voters_in_conv = in_conversation
    else:
        voters_in_conv = summary.get("voters-in-conv") or len(grouped)
    counted = {
        "voters": len(np.unique(conversation.votes.participant)),
        "voters-in-conv": voters_in_conv,
        "commenters": len(authors),
        "comments": len(conversation.statements),
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


def _write_stats_history(file: TextIO, conversation: Conversation) -> None:
    """Cumulative counts after each event (a participant's arrival, comment, vote) in time order.

    Without real vote times (votes made up from participants-votes.csv) there is no history to
    tell, so only the header is written.
    """
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(STATS_HISTORY_COLUMNS)
    if not conversation.has_timestamps:
        return
    votes = conversation.votes
    participant_index = {pid: i for i, pid in enumerate(conversation.participant_ids)}
    dated = [s for s in conversation.statements if s.created_ms is not None]
    comment_time = np.array([s.created_ms for s in dated], dtype=np.int64)
    authors = [participant_index.get(s.author_id, -1) if s.author_id else -1 for s in dated]
    comment_who = np.array(authors, dtype=np.int64)
    # A participant's arrival is their first vote or comment (the export has no visit times).
    first = np.full(len(conversation.participant_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, votes.participant, votes.timestamp_ms)
    known = comment_who >= 0
    np.minimum.at(first, comment_who[known], comment_time[known])
    arrived = first != np.iinfo(np.int64).max
    # kind: 0 participant arrives, 1 comment, 2 vote (that order among equal times)
    time = np.concatenate([first[arrived], comment_time, votes.timestamp_ms])
    kind = np.concatenate(
        [
            np.zeros(arrived.sum(), dtype=np.int8),
            np.ones(len(dated), dtype=np.int8),
            np.full(len(votes), 2, dtype=np.int8),
        ]
    )
    who = np.concatenate([np.flatnonzero(arrived), comment_who, votes.participant])
    order = np.lexsort((kind, time))
    kind, who = kind[order], who[order]
    n_votes = np.cumsum(kind == 2)
    n_comments = np.cumsum(kind == 1)
    n_visitors = np.cumsum(kind == 0)
    n_voters = np.cumsum(_first_of_each(who, kind == 2))
    n_commenters = np.cumsum(_first_of_each(who, (kind == 1) & (who >= 0)))
    writer.writerows(
        zip(
            n_votes.tolist(),
            n_comments.tolist(),
            n_visitors.tolist(),
            n_voters.tolist(),
            n_commenters.tolist(),
            strict=True,
        )
    )


def _first_of_each(who: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mask of the positions where ``mask`` holds and ``who`` appears there for the first time."""
    first = np.zeros(len(who), dtype=bool)
    positions = np.flatnonzero(mask)
    _, at = np.unique(who[positions], return_index=True)
    first[positions[at]] = True
    return first
