"""Import a Pol.is export as a conversation, and export a conversation as one.

An import keeps the export's ids: participant ids become pids and comment ids become sids, so
that exporting the conversation again gives the same files back (before the math has run, the
group-id column is blank). Everything is written in one transaction, with bulk inserts.

An import takes the texts as the files give them: our default export puts a ``'`` before a text
that begins like a spreadsheet formula, and that ``'`` is imported with it (visible, never
silently removed); an ``exact`` export moves a conversation unchanged.

What the tables cannot hold as such is encoded:

* summary.csv rows other than topic and conversation-description go into ``Conversation.extra``
  (a JSON object) and are written back on export;
* a statement without a time (a comments.csv row with a blank timestamp, or a comment known only
  from participants-votes.csv) is stored at ``created_ms`` 0 and exported with a blank time;
* votes made up from participants-votes.csv alone (an export without votes.csv) are stored at
  time 0, and a conversation whose votes are all at time 0 exports without vote datetimes and
  with an empty stats history, as such an export reads;
* statements whose text repeats an earlier one's (real exports have a few) keep their text; the
  repeats' ``text_key`` (the duplicate check of new statements) is made unique with their sid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from polis_like.conversation import Conversation, Moderation, VoteEvents
from polis_like.conversation import Statement as ExportStatement
from polis_like.errors import InputError
from polis_like.math.matrix import latest_index

from .bulk import read_all, read_chunks
from .conversations import TOPIC_MAX, clean_text, create_conversation, get_conversation, text_key
from .db import now_ms
from .models import MAX_ID, LatestVoteRow, ParticipantRow, StatementRow, VoteEventRow
from .notify import notify_change
from .results import latest_groups

if TYPE_CHECKING:
    from polis_like.io.write import ExportSource

DEFAULT_TOPIC = "Imported conversation"
CHUNK = 10_000
XID_MAX = 200  # ParticipantRow.xid's length
#: Summary rows that live in their own columns rather than in ``extra``.
_OWN_COLUMNS = ("topic", "conversation-description")

Progress = Callable[[int, int], None]


# -- import ---------------------------------------------------------------------------------


def import_export(
    sessions: sessionmaker[Session],
    path: str | os.PathLike[str],
    *,
    topic: str | None = None,
    owner_id: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Read the Pol.is export at ``path`` (a folder or .zip) and import it; returns its id."""
    from polis_like.io import read_export

    return import_conversation(
        sessions, read_export(path), topic=topic, owner_id=owner_id, progress=progress
    )


def import_conversation(
    sessions: sessionmaker[Session],
    conversation: Conversation,
    *,
    topic: str | None = None,
    owner_id: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Store ``conversation`` as a new conversation (open moderation); returns its id.

    One transaction: an error leaves nothing behind. ``progress(done, total)`` is called as rows
    are written (participants, statements, vote events and latest votes).
    """
    pids = _integer_ids(conversation.participant_ids, "participant")
    sids = _integer_ids([s.id for s in conversation.statements], "comment")
    pid_of = dict(zip(conversation.participant_ids, pids.tolist(), strict=True))
    xids = _checked_xids(conversation, pid_of)
    _check_no_nul(conversation)
    for statement in conversation.statements:
        if statement.author_id is not None and statement.author_id not in pid_of:
            raise InputError(
                f"the author {statement.author_id} of comment {statement.id} is not a participant"
            )
    votes = conversation.votes
    # Events in time order, ties in the order given; all at 0 when the export had no times.
    order = votes.time_order()
    times = (
        votes.timestamp_ms[order] if conversation.has_timestamps else np.zeros(len(order), np.int64)
    )
    event_pid = pids[votes.participant[order]]
    event_sid = sids[votes.statement[order]]
    event_vote = votes.vote[order].astype(np.int64)
    latest = _latest(event_pid, event_sid, event_vote, times)

    statement_times = [s.created_ms for s in conversation.statements]
    arrival = _arrivals(conversation, votes.participant[order], times)
    dated = [t for t in statement_times if t is not None and t > 0]
    dated += [int(times.min())] if len(times) and times.min() > 0 else []
    now = now_ms()

    settings = {
        "topic": _topic(topic, conversation.summary),
        "moderation": "open",
        "description": conversation.summary.get("conversation-description", ""),
    }
    extra = {k: v for k, v in conversation.summary.items() if k not in _OWN_COLUMNS}
    total = len(pids) + len(sids) + len(times) + len(latest[0])
    done = 0

    def report(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(done, total)

    with sessions.begin() as session:
        row = create_conversation(
            session, settings, owner_id=owner_id, created_ms=min(dated, default=now), extra=extra
        )
        cid = row.id
        row.next_pid = int(pids.max()) + 1 if len(pids) else 0
        row.next_sid = int(sids.max()) + 1 if len(sids) else 0
        row.revision = 0
        session.flush()
        if progress is not None:
            progress(0, total)

        participants = [
            {
                "conversation_id": cid,
                "pid": pid,
                "visitor": None,
                "xid": xids.get(pid),
                "banned": False,
                "created_ms": int(at) if at is not None else now,
            }
            for pid, at in zip(pids.tolist(), arrival, strict=True)
        ]
        _insert(session, ParticipantRow, participants, report)

        statements = []
        seen_keys: set[str] = set()
        for statement, sid, created in zip(
            conversation.statements, sids.tolist(), statement_times, strict=True
        ):
            key = text_key(statement.text)
            if key in seen_keys:
                key = _repeat_key(key, sid)
            seen_keys.add(key)
            author = statement.author_id
            statements.append(
                {
                    "conversation_id": cid,
                    "sid": sid,
                    "text": statement.text,
                    "text_key": key,
                    "author_pid": pid_of[author] if author is not None else None,
                    "status": int(statement.moderation),
                    "is_seed": False,
                    "is_meta": bool(statement.is_meta),
                    "created_ms": created if created is not None else 0,
                }
            )
        _insert(session, StatementRow, statements, report)

        _insert(
            session, VoteEventRow, _vote_rows(cid, event_pid, event_sid, event_vote, times), report
        )
        _insert(session, LatestVoteRow, _vote_rows(cid, *latest), report)
        notify_change(session, cid)
    return cid


def _integer_ids(ids: Sequence[str], kind: str) -> np.ndarray:
    """The export's ids as integers (the readers guarantee non-negative integers).

    The range is checked on Python integers, before they become int64: an id past 2^63 would
    overflow the array instead of being refused.
    """
    high = MAX_ID - 1  # the next pid or sid after it must be an id too
    try:
        numbers = [int(i) for i in ids]
    except ValueError:  # not an integer, or thousands of digits
        bad = next((i for i in ids if not (i.isascii() and i.isdigit())), None)
        if bad is not None:
            raise InputError(f"{kind} id {bad!r} is not a non-negative integer") from None
        numbers = [high + 1]
    if numbers and (min(numbers) < 0 or max(numbers) > high):
        raise InputError(f"{kind} ids must be between 0 and {high}")
    values = np.array(numbers, dtype=np.int64)
    if len(np.unique(values)) != len(values):
        raise InputError(f"{kind} ids repeat")
    return values


def _checked_xids(conversation: Conversation, pid_of: dict[str, int]) -> dict[int, str]:
    """pid -> xid; an xid may name one participant only and fit its column."""
    xids: dict[int, str] = {}
    owner: dict[str, str] = {}
    for participant, xid in conversation.xids.items():
        if not xid:
            continue
        if len(xid) > XID_MAX:
            raise InputError(
                f"the xid of participant {participant} is {len(xid)} characters "
                f"long; the limit is {XID_MAX}"
            )
        if xid in owner:
            raise InputError(
                f"participants {owner[xid]} and {participant} have the same xid {xid!r}"
            )
        owner[xid] = participant
        if participant in pid_of:
            xids[pid_of[participant]] = xid
    return xids


def _check_no_nul(conversation: Conversation) -> None:
    """PostgreSQL text cannot hold NUL characters; refuse them on every database alike."""
    for statement in conversation.statements:
        if "\x00" in statement.text:
            raise InputError(f"comment {statement.id} contains a NUL character")
    for key in _OWN_COLUMNS:
        if "\x00" in conversation.summary.get(key, ""):
            raise InputError(f"the summary's {key} contains a NUL character")
    for participant, xid in conversation.xids.items():
        if "\x00" in xid:
            raise InputError(f"the xid of participant {participant} contains a NUL character")


def _topic(topic: str | None, summary: dict[str, str]) -> str:
    if topic is not None:
        return clean_text(topic, what="topic", limit=TOPIC_MAX)
    given = summary.get("topic", "")
    return given[:TOPIC_MAX] if given.strip() else DEFAULT_TOPIC


def _repeat_key(key: str, sid: int) -> str:
    """A text key for a repeated text: unique by sid, never equal to a SHA-256 key (":")."""
    suffix = f":{sid}"
    return key[: 64 - len(suffix)] + suffix


def _latest(
    pid: np.ndarray, sid: np.ndarray, vote: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each (pid, sid)'s vote that counts, by the math's rule, sorted by (pid, sid)."""
    keep = latest_index(VoteEvents(times, pid, sid, vote))
    return pid[keep], sid[keep], vote[keep], times[keep]


def _arrivals(
    conversation: Conversation, event_index: np.ndarray, times: np.ndarray
) -> list[int | None]:
    """Each participant's first vote or comment time (None: neither is known)."""
    big = np.iinfo(np.int64).max
    first = np.full(len(conversation.participant_ids), big, dtype=np.int64)
    np.minimum.at(first, event_index, times)
    index = {pid: i for i, pid in enumerate(conversation.participant_ids)}
    for statement in conversation.statements:
        if statement.author_id is not None and statement.created_ms is not None:
            i = index[statement.author_id]
            first[i] = min(first[i], statement.created_ms)
    return [None if t == big else t for t in first.tolist()]


def _vote_rows(
    cid: int, pid: np.ndarray, sid: np.ndarray, vote: np.ndarray, times: np.ndarray
) -> list[dict]:
    return [
        {"conversation_id": cid, "pid": p, "sid": s, "vote": v, "created_ms": t}
        for p, s, v, t in zip(
            pid.tolist(), sid.tolist(), vote.tolist(), times.tolist(), strict=True
        )
    ]


def _insert(session: Session, model: Any, rows: list[dict], report: Callable[[int], None]) -> None:
    """Bulk inserts, ``CHUNK`` rows at a time, in the order given (so vote event ids follow it).

    SQLite takes Core executemany inserts. On PostgreSQL, psycopg runs an executemany as one
    statement a row (pipelined), several times slower than COPY, which the import uses instead,
    inside the same transaction.
    """
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0]) if rows else []
        driver = session.connection().connection.driver_connection
        assert driver is not None  # an open connection has its driver's
        command = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with driver.cursor() as cursor:
            for chunk in _chunks(rows):
                with cursor.copy(command) as copy:
                    for row in chunk:
                        copy.write_row(tuple(row.values()))
                report(len(chunk))
        return
    statement = insert(table)  # Core: no ORM bulk bookkeeping per row
    for chunk in _chunks(rows):
        session.execute(statement, chunk)
        report(len(chunk))


def _chunks(rows: list[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


# -- export ---------------------------------------------------------------------------------


def export_conversation(
    session: Session, conversation_id: int
) -> tuple[Conversation, dict[str, int | None]]:
    """The conversation as a Pol.is export would describe it, and each participant's group.

    Groups come from the latest math result (None: not clustered), or are all None before the
    first result; with a result, summary.csv's voters-in-conv is the result's too.
    Raises :class:`~polis_like.storage.conversations.NotFound` for an unknown conversation.
    """
    parts = _export_parts(session, conversation_id)
    table = read_all(session, _EVENTS_BY_ID, (conversation_id,), _EXPORT_EVENT)
    votes = parts.events(table)
    conversation = Conversation(
        summary=parts.summary,
        statements=parts.statements,
        participant_ids=parts.participant_ids,
        xids=parts.xids,
        votes=votes,
        has_timestamps=not (len(table) and int(table["created_ms"].max()) == 0),
    )
    return conversation, parts.groups


def export_source(
    session: Session, conversation_id: int
) -> tuple[ExportSource, dict[str, int | None]]:
    """:func:`export_conversation` with the votes read in chunks as they are written
    (:class:`polis_like.io.write.ExportSource`), so that memory stays flat in their number."""
    parts = _export_parts(session, conversation_id)
    from polis_like.io.write import NO_VOTE, ExportSource

    first = np.full(len(parts.pids), NO_VOTE, dtype=np.int64)
    last_ms = [int(NO_VOTE)]  # the time of the last vote (NO_VOTE: none)
    for chunk in read_chunks(session, _FIRST_VOTES, (conversation_id,), _FIRST_VOTE):
        first[np.searchsorted(parts.pids, chunk["pid"])] = chunk["first_ms"]
        last_ms.append(int(chunk["last_ms"].max()))

    def events() -> Iterator[VoteEvents]:
        for chunk in read_chunks(session, _EVENTS_BY_TIME, (conversation_id,), _EXPORT_EVENT):
            yield parts.events(chunk)

    def latest() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # pids are canonical participant ids, in order: the rows of participants-votes.csv
        for chunk in read_chunks(session, _LATEST_BY_PID, (conversation_id,), _LATEST_VOTE):
            yield (
                np.searchsorted(parts.pids, chunk["pid"]),
                np.searchsorted(parts.sids, chunk["sid"]),
                chunk["vote"],
            )

    source = ExportSource(
        summary=parts.summary,
        statements=parts.statements,
        participant_ids=parts.participant_ids,
        xids=parts.xids,
        # votes all at time 0 were made up from participants-votes.csv (see the module's doc)
        has_timestamps=max(last_ms[1:], default=None) != 0,
        first_vote_ms=first,
        events=events(),
        latest=latest(),
    )
    return source, parts.groups


_EXPORT_EVENT = np.dtype(
    [("created_ms", np.int64), ("pid", np.int32), ("sid", np.int32), ("vote", np.int16)]
)
_EVENTS_BY_ID = (
    "SELECT created_ms, pid, sid, vote FROM vote_events WHERE conversation_id = {} ORDER BY id"
)
_EVENTS_BY_TIME = (
    "SELECT created_ms, pid, sid, vote FROM vote_events WHERE conversation_id = {} "
    "ORDER BY created_ms, id"
)
_FIRST_VOTE = np.dtype([("pid", np.int32), ("first_ms", np.int64), ("last_ms", np.int64)])
_FIRST_VOTES = (
    "SELECT pid, min(created_ms), max(created_ms) FROM vote_events "
    "WHERE conversation_id = {} GROUP BY pid"
)
_LATEST_VOTE = np.dtype([("pid", np.int32), ("sid", np.int32), ("vote", np.int16)])
_LATEST_BY_PID = (
    "SELECT pid, sid, vote FROM latest_votes WHERE conversation_id = {} ORDER BY pid, sid"
)


@dataclass(frozen=True)
class _ExportParts:
    """What an export holds but the votes."""

    pids: np.ndarray
    sids: np.ndarray
    summary: dict[str, str]
    statements: list[ExportStatement]
    participant_ids: list[str]
    xids: dict[str, str]
    groups: dict[str, int | None]

    def events(self, table: np.ndarray) -> VoteEvents:
        """Vote event records (:data:`_EXPORT_EVENT`) with pids and sids as indices."""
        return VoteEvents(
            table["created_ms"],
            np.searchsorted(self.pids, table["pid"]),
            np.searchsorted(self.sids, table["sid"]),
            table["vote"],
        )


def _export_parts(session: Session, conversation_id: int) -> _ExportParts:
    row = get_conversation(session, conversation_id)
    participants = session.execute(
        select(ParticipantRow.pid, ParticipantRow.xid)
        .where(ParticipantRow.conversation_id == conversation_id)
        .order_by(ParticipantRow.pid)
    ).all()
    statements = session.execute(
        select(
            StatementRow.sid,
            StatementRow.text,
            StatementRow.author_pid,
            StatementRow.created_ms,
            StatementRow.status,
            StatementRow.is_meta,
        )
        .where(StatementRow.conversation_id == conversation_id)
        .order_by(StatementRow.sid)
    ).all()
    pids = np.array([p.pid for p in participants], dtype=np.int64)
    sids = np.array([s.sid for s in statements], dtype=np.int64)

    summary = {"topic": row.topic}
    summary.update(
        (k, v) for k, v in json.loads(row.extra or "{}").items() if k not in _OWN_COLUMNS
    )
    summary["conversation-description"] = row.description
    participant_ids = [str(p) for p in pids.tolist()]
    groups: dict[str, int | None] = dict.fromkeys(participant_ids)
    latest = latest_groups(session, conversation_id)
    if latest is not None:
        positions, n_in_conversation = latest
        group = positions.group
        for pid, key in zip(pids.tolist(), participant_ids, strict=True):
            if pid < len(group) and group[pid] >= 0:
                groups[key] = int(group[pid])
        summary["voters-in-conv"] = str(n_in_conversation)
    return _ExportParts(
        pids=pids,
        sids=sids,
        summary=summary,
        statements=[
            ExportStatement(
                id=str(s.sid),
                text=s.text,
                author_id=str(s.author_pid) if s.author_pid is not None else None,
                created_ms=s.created_ms or None,
                moderation=Moderation(s.status),
                is_meta=bool(s.is_meta),
            )
            for s in statements
        ],
        participant_ids=participant_ids,
        xids={str(p.pid): p.xid for p in participants if p.xid},
        groups=groups,
    )


def write_conversation(
    session: Session, conversation_id: int, folder: str | os.PathLike[str], *, exact: bool = False
) -> None:
    """Write the conversation as the five Pol.is CSV files into ``folder``, the votes a chunk
    at a time as they are read (:func:`export_source`).

    Texts that begin like a spreadsheet formula get a leading ``'`` unless ``exact``
    (:func:`polis_like.io.write_export`).
    """
    from polis_like.io.write import write_source

    source, groups = export_source(session, conversation_id)
    write_source(source, folder, groups=groups, exact=exact)
