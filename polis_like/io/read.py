"""Read a Pol.is export (a folder or a .zip) into a :class:`Conversation`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from polis_like.conversation import Conversation, Moderation, Statement, VoteEvents, canonical_ids
from polis_like.errors import InputError
from polis_like.io import _fast
from polis_like.io.polis_csv import (
    COMMENTS,
    IS_META,
    PARTICIPANTS_VOTES,
    SUMMARY,
    SUMMARY_NUMERIC,
    VOTES,
    XID,
    Table,
    decode,
    parse_flag,
    parse_id,
    parse_int,
    parse_optional_int,
    parse_vote,
    records,
)
from polis_like.io.source import ExportSource, open_export

VOTES_REQUIRED = ("timestamp", "comment-id", "voter-id", "vote")
_COMMENTS_REQUIRED = ("timestamp", "comment-id", "author-id", "moderated", "comment-body")
_COMMENTS_NUMERIC = ("agrees", "disagrees")
PARTICIPANTS_REQUIRED = ("participant", "group-id")
PARTICIPANTS_NUMERIC = ("n-comments", "n-votes", "n-agree", "n-disagree")


@dataclass
class _Votes:
    """Vote events as read, with ids still as text."""

    timestamp: list[int] = field(default_factory=list)
    voter: list[str] = field(default_factory=list)
    comment: list[str] = field(default_factory=list)
    vote: list[int] = field(default_factory=list)
    has_timestamps: bool = True


@dataclass
class _Matrix:
    """What participants-votes.csv holds: groups, xids, comment columns and the cells as events."""

    groups: dict[str, int | None] = field(default_factory=dict)
    xids: dict[str, str] = field(default_factory=dict)
    comment_ids: list[str] = field(default_factory=list)
    header_line: int = 1
    votes: _Votes = field(default_factory=lambda: _Votes(has_timestamps=False))


def read_export(path: str | os.PathLike[str], *, fast: bool = True) -> Conversation:
    """Read the Pol.is export at ``path`` (a folder or a .zip of one) into a Conversation.

    Votes come from ``votes.csv`` (with ``comments.csv``), or from ``participants-votes.csv``
    alone when there is no ``votes.csv``. Bad input raises :class:`InputError` naming the file
    and line.

    The two large files are first scanned at column speed (see ``_fast``); a file that the scan
    cannot prove valid is read again row by row, which gives the same Conversation or raises
    the error with its line. ``fast=False`` reads row by row only (the reference of the tests).
    """
    with open_export(path) as source:
        summary = _read_summary(source) if source.has(SUMMARY) else {}
        comments = _read_comments(source) if source.has(COMMENTS) else None
        if fast:
            conversation = _fast.read(source, summary, comments)
            if conversation is not None:
                return conversation
        matrix = _read_matrix(source) if source.has(PARTICIPANTS_VOTES) else None
        if source.has(VOTES):
            comments = _check_comments_present(source, comments)
            votes = _read_votes(source, comments)
            if matrix is not None:
                check_matrix_comments(source, matrix.comment_ids, comments, matrix.header_line)
        else:
            assert matrix is not None  # open_export found one of the two files
            votes = matrix.votes
            comments = comments or {}
            for cid in matrix.comment_ids:
                comments.setdefault(cid, Statement(id=cid, text=""))
    return _assemble(summary, comments, matrix, votes)


def _check_comments_present(
    source: ExportSource, comments: dict[str, Statement] | None
) -> dict[str, Statement]:
    if comments is None:
        message = f"{VOTES} needs {COMMENTS}, which is missing"
        raise InputError(message, path=source.where(COMMENTS))
    return comments


def check_matrix_comments(
    source: ExportSource, comment_ids: list[str], comments: dict[str, Statement], line: int
) -> None:
    """With votes.csv, every comment column of participants-votes.csv is in comments.csv."""
    unknown = [c for c in comment_ids if c not in comments]
    if unknown:
        raise InputError(
            f"comment-id {unknown[0]} is not in {COMMENTS}",
            path=source.where(PARTICIPANTS_VOTES),
            line=line,
        )


def _assemble(
    summary: dict[str, str], comments: dict[str, Statement], matrix: _Matrix | None, votes: _Votes
) -> Conversation:
    statements = [comments[cid] for cid in canonical_ids(list(comments))]
    ids = set(votes.voter)
    ids.update(s.author_id for s in statements if s.author_id is not None)
    if matrix is not None:
        ids.update(matrix.groups)
    participant_ids = canonical_ids(ids)
    participant_index = {pid: i for i, pid in enumerate(participant_ids)}
    statement_index = {s.id: i for i, s in enumerate(statements)}
    events = VoteEvents(
        np.array(votes.timestamp, dtype=np.int64),
        np.array([participant_index[p] for p in votes.voter], dtype=np.int32),
        np.array([statement_index[c] for c in votes.comment], dtype=np.int32),
        np.array(votes.vote, dtype=np.int8),
    )
    return Conversation(
        summary=summary,
        statements=statements,
        participant_ids=participant_ids,
        xids=matrix.xids if matrix is not None else {},
        votes=events,
        reference_groups=matrix.groups if matrix is not None else {},
        has_timestamps=votes.has_timestamps,
    )


def _read_summary(source: ExportSource) -> dict[str, str]:
    """summary.csv: key,value rows without a header."""
    path = source.where(SUMMARY)
    text = decode(source.read(SUMMARY), path)
    summary: dict[str, str] = {}
    for line, row in records(text, path):
        if len(row) != 2:
            raise InputError(f"{len(row)} fields where a key,value row has 2", path=path, line=line)
        key, value = row
        if key in summary:
            raise InputError(f"key {key!r} appears twice", path=path, line=line)
        if key in SUMMARY_NUMERIC and value != "":
            parse_int(value, key, path, line)
        summary[key] = value
    if not summary:
        raise InputError("empty file", path=path, line=1)
    return summary


def _read_comments(source: ExportSource) -> dict[str, Statement]:
    """comments.csv: one statement a row, by comment id."""
    table = Table(source.read(COMMENTS), source.where(COMMENTS), _COMMENTS_REQUIRED)
    path, col = table.path, table.columns
    i_time, i_id, i_author = col["timestamp"], col["comment-id"], col["author-id"]
    i_mod, i_body, i_meta = col["moderated"], col["comment-body"], col.get(IS_META)
    numeric = [(name, col[name]) for name in _COMMENTS_NUMERIC if name in col]
    statements: dict[str, Statement] = {}
    for line, row in table.rows():
        cid = parse_id(row[i_id], "comment-id", path, line)
        if cid in statements:
            raise InputError(f"comment-id {cid} appears twice", path=path, line=line)
        for name, i in numeric:
            parse_int(row[i], name, path, line)
        author = row[i_author]
        statements[cid] = Statement(
            id=cid,
            text=row[i_body],
            author_id=parse_id(author, "author-id", path, line) if author != "" else None,
            created_ms=parse_optional_int(row[i_time], "timestamp", path, line),
            moderation=Moderation(parse_vote(row[i_mod], "moderated", path, line)),
            is_meta=parse_flag(row[i_meta], IS_META, path, line) if i_meta is not None else False,
        )
    return statements


def _read_votes(source: ExportSource, comments: dict[str, Statement]) -> _Votes:
    """votes.csv: every vote event, in file order."""
    table = Table(source.read(VOTES), source.where(VOTES), VOTES_REQUIRED)
    path, col = table.path, table.columns
    i_time, i_comment, i_voter, i_vote = (col[name] for name in VOTES_REQUIRED)
    i_datetime = col.get("datetime")
    votes = _Votes()
    any_datetime = False
    for line, row in table.rows():
        votes.timestamp.append(parse_int(row[i_time], "timestamp", path, line))
        cid = parse_id(row[i_comment], "comment-id", path, line)
        if cid not in comments:
            message = f"vote on comment-id {cid}, which is not in {COMMENTS}"
            raise InputError(message, path=path, line=line)
        votes.comment.append(cid)
        votes.voter.append(parse_id(row[i_voter], "voter-id", path, line))
        votes.vote.append(parse_vote(row[i_vote], "vote", path, line))
        any_datetime = any_datetime or (i_datetime is not None and row[i_datetime] != "")
    # Our writer leaves datetime blank when the times were made up from participants-votes.csv.
    votes.has_timestamps = any_datetime or i_datetime is None or not votes.vote
    return votes


def _read_matrix(source: ExportSource) -> _Matrix:
    """participants-votes.csv: groups and xids, and its cells as events in row then column order."""
    table = Table(
        source.read(PARTICIPANTS_VOTES), source.where(PARTICIPANTS_VOTES), PARTICIPANTS_REQUIRED
    )
    path, col = table.path, table.columns
    matrix = _Matrix(header_line=table.header_line)
    comment_columns = matrix_comment_columns(table)
    matrix.comment_ids = [cid for cid, _ in comment_columns]
    i_participant, i_group, i_xid = col["participant"], col["group-id"], col.get(XID)
    numeric = [(name, col[name]) for name in PARTICIPANTS_NUMERIC if name in col]
    votes = matrix.votes
    for line, row in table.rows():
        pid = parse_id(row[i_participant], "participant", path, line)
        if pid in matrix.groups:
            raise InputError(f"participant {pid} appears twice", path=path, line=line)
        matrix.groups[pid] = parse_optional_int(row[i_group], "group-id", path, line)
        if i_xid is not None and row[i_xid] != "":
            matrix.xids[pid] = row[i_xid]
        for name, i in numeric:
            parse_int(row[i], name, path, line)
        for cid, i in comment_columns:
            cell = row[i]
            if cell != "":
                votes.vote.append(parse_vote(cell, f"vote for comment-id {cid}", path, line))
                votes.voter.append(pid)
                votes.comment.append(cid)
    votes.timestamp = list(range(len(votes.vote)))
    return matrix


def matrix_comment_columns(table: Table) -> list[tuple[str, int]]:
    """The comment columns of participants-votes.csv (digits for a name): id and position."""
    columns: list[tuple[str, int]] = []
    seen: set[str] = set()
    for i, name in enumerate(table.header):
        if name.isascii() and name.isdigit():
            cid = parse_id(name, "comment-id", table.path, table.header_line)
            if cid in seen:
                message = f"comment-id {cid} appears twice"
                raise InputError(message, path=table.path, line=table.header_line)
            seen.add(cid)
            columns.append((cid, i))
    return columns
