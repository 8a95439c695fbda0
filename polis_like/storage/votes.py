"""The participant's path: who they are, their votes, and which statement they see next.

This is the hot path of the service (a later load test sends thousands of votes a second), so it
speaks SQLAlchemy Core and keeps each request to a few short statements.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    bindparam,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from polis_like.conversation import VoteEvents
from polis_like.errors import NotFound
from polis_like.math.matrix import latest_index

from .bulk import read_aggregated, read_all
from .conversations import PARTICIPANT_VIEW, next_id
from .db import execute_direct, now_ms, sqlite_turn
from .models import ConversationRow, LatestVoteRow, ParticipantRow, StatementRow, VoteEventRow
from .notify import notify_change, vote_wake_ups, wake_up_workers

#: The routing weight of a statement the math has not seen yet: the Pol.is priority of a
#: statement with no votes and extremity 0, ((1 - 1/2) * 1 * 1/2 * (1 + 8))^2.
NEW_STATEMENT_PRIORITY = (0.25 * 9.0) ** 2


@dataclass(frozen=True)
class Who:
    """How a request identifies its participant: the cookie's visitor id and an optional xid."""

    visitor: str | None
    xid: str | None = None
    #: A keyed hash of the request's network address (see ``ParticipantRow.origin``).
    origin: str | None = None


_BY_XID = select(ParticipantRow.pid, ParticipantRow.banned).where(
    ParticipantRow.conversation_id == bindparam("conversation_id"),
    ParticipantRow.xid == bindparam("key"),
)
_BY_VISITOR = select(ParticipantRow.pid, ParticipantRow.banned).where(
    ParticipantRow.conversation_id == bindparam("conversation_id"),
    ParticipantRow.visitor == bindparam("key"),
)
_VOTED = select(LatestVoteRow.sid).where(
    LatestVoteRow.conversation_id == bindparam("conversation_id"),
    LatestVoteRow.pid == bindparam("pid"),
)
_STATUS = select(StatementRow.status).where(
    StatementRow.conversation_id == bindparam("conversation_id"),
    StatementRow.sid == bindparam("sid"),
)
_INSERT_EVENT = insert(VoteEventRow)
_UPSERTS: dict[str, Any] = {}


def _by_xid_or_visitor(who: Who, by_xid: Any, by_visitor: Any) -> tuple[Any, str | None]:
    """The query and key that find ``who``: by XID when the request names one, else by the
    cookie's visitor id."""
    return (by_xid, who.xid) if who.xid is not None else (by_visitor, who.visitor)


def find_participant(session: Session, conversation_id: int, who: Who) -> tuple[int, bool] | None:
    """(pid, banned) of the participant, or None when they have not taken part yet."""
    query, key = _by_xid_or_visitor(who, _BY_XID, _BY_VISITOR)
    if key is None:
        return None
    row = session.connection().execute(query, {"conversation_id": conversation_id, "key": key})
    found = row.first()
    return (found.pid, found.banned) if found else None


def _visit_query(column):
    return PARTICIPANT_VIEW.add_columns(ParticipantRow.pid, ParticipantRow.banned).outerjoin(
        ParticipantRow,
        (ParticipantRow.conversation_id == ConversationRow.id) & (column == bindparam("key")),
    )


_VISIT_BY_XID = _visit_query(ParticipantRow.xid)
_VISIT_BY_VISITOR = _visit_query(ParticipantRow.visitor)


def visit(session: Session, conversation_id: int, who: Who) -> Any:
    """What a participant's request needs of the conversation (the columns of
    :data:`~.conversations.PARTICIPANT_VIEW`: its settings and latest tick) and who asks
    (``pid`` and ``banned``, both None when they have not taken part yet), in one query."""
    query, key = _by_xid_or_visitor(who, _VISIT_BY_XID, _VISIT_BY_VISITOR)
    rows = execute_direct(session, query, {"conversation_id": conversation_id, "key": key})
    if not rows:
        raise NotFound(f"no conversation {conversation_id}")
    return rows[0]


_BANNED = select(ParticipantRow.xid, ParticipantRow.origin).where(
    ParticipantRow.conversation_id == bindparam("conversation_id"), ParticipantRow.banned
)


def xid_key(xid: str) -> str:
    """What two XIDs share when a ban of one holds against the other: case folded."""
    return unicodedata.normalize("NFKC", xid).casefold()


def inherits_ban(session: Session, conversation_id: int, who: Who) -> bool:
    """Whether a new participant starts banned: one named by an XID when it is a banned XID
    but for case; one known by a cookie when they join from the network address a banned
    participant joined from (a cleared cookie does not lift a ban). An XID names a person
    whatever their address, so addresses do not ban XIDs (nor spread from one to another)."""
    key = xid_key(who.xid) if who.xid is not None else None
    for xid, origin in session.execute(_BANNED, {"conversation_id": conversation_id}):
        if key is not None:
            if xid is not None and xid_key(xid) == key:
                return True
        elif who.origin is not None and origin == who.origin:
            return True
    return False


def join(
    session: Session,
    conversation_id: int,
    who: Who,
    *,
    admit: Callable[[], None] | None = None,
) -> tuple[int, bool]:
    """The participant's (pid, banned); they become a participant on their first vote or
    statement. ``admit`` is called before a participant is made, and refuses by raising.

    Each write is one statement, so this works alike in a transaction and in autocommit
    (:func:`~.db.autocommit`): a request that made the same visitor a participant first wins,
    and this one finds theirs (the pid it drew stays unused).
    """
    found = find_participant(session, conversation_id, who)
    if found is not None:
        return found
    if admit is not None:
        admit()
    banned = inherits_ban(session, conversation_id, who)
    pid = next_id(session, conversation_id, "next_pid")
    values = {
        "conversation_id": conversation_id,
        "pid": pid,
        "visitor": who.visitor,
        "xid": who.xid,
        "banned": banned,
        "origin": who.origin,
        "created_ms": now_ms(),
    }
    made = session.execute(_insert_participant(session.get_bind().dialect.name), values).first()
    if made is None:  # the same visitor's other request got there first
        found = find_participant(session, conversation_id, who)
        if found is None:
            raise RuntimeError(f"participant {who} neither made nor found")
        return found
    # Committed at once: the participant's first write (a vote, with its turn to write SQLite:
    # storage.db.sqlite_turn) must begin a transaction of its own.
    session.commit()
    return pid, banned


@functools.cache
def _insert_participant(dialect: str):
    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(ParticipantRow.__table__)
        .on_conflict_do_nothing()
        .returning(ParticipantRow.__table__.c.pid)
    )


def _upsert_latest(dialect: str):
    if dialect not in _UPSERTS:
        module = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(LatestVoteRow)
        new, old = statement.excluded, LatestVoteRow
        # The one latest-vote rule (polis_like.math.matrix.latest_index): the later vote wins,
        # and at the same millisecond the larger one.
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=["conversation_id", "pid", "sid"],
            set_={"vote": new.vote, "created_ms": new.created_ms},
            where=(new.created_ms > old.created_ms)
            | ((new.created_ms == old.created_ms) & (new.vote > old.vote)),
        )
    return _UPSERTS[dialect]


def cast_vote(
    session: Session, conversation_id: int, pid: int, sid: int, vote: int, *, at: int | None = None
) -> int:
    """Record a vote (replacing the participant's earlier vote on the statement); returns its time.

    No lock: votes of one conversation commit in any order, and the worker still reads each
    exactly once (:func:`read_new_votes`).
    """
    at = now_ms() if at is None else at
    values = {
        "conversation_id": conversation_id,
        "pid": pid,
        "sid": sid,
        "vote": vote,
        "created_ms": at,
    }
    session.execute(_upsert_latest(session.get_bind().dialect.name), values)
    session.execute(_INSERT_EVENT, values)
    notify_change(session, conversation_id)
    return at


def record_vote(
    session: Session, conversation_id: int, pid: int, sid: int, vote: int
) -> np.ndarray:
    """:func:`cast_vote` and commit; returns the statements the participant has now voted on
    (what routing needs next), so that the request needs the database no more.

    The write comes last and the commit at once, so the vote holds what it locks as briefly as
    can be. On PostgreSQL it is one statement, one round trip: the latest-vote upsert and the
    event as data-modifying CTEs, the workers' wake-up (the first vote of the conversation in
    :data:`~.notify.WAKE_EVERY_S`), and the participant's votes. On SQLite
    (one writer per file) the votes are read first, so that the write lock is held only for the
    two writes and the commit.
    """
    if session.get_bind().dialect.name != "postgresql":
        earlier = voted_sids(session, conversation_id, pid)
        with sqlite_turn(session):
            cast_vote(session, conversation_id, pid, sid, vote)
            session.commit()
        return np.union1d(earlier, [sid])
    values = {"c": conversation_id, "p": pid, "s": sid, "v": vote, "t": now_ms()}
    wake = vote_wake_ups.due(conversation_id)
    rows = execute_direct(session, _cast_statement(wake), values)
    session.commit()
    # The final SELECT sees the votes as they were before this statement: add this one.
    earlier = np.fromiter((r[0] for r in rows if r[0] >= 0), dtype=np.int64)
    return np.union1d(earlier, [sid])


@functools.cache
def _cast_statement(wake: bool):
    columns: dict[str, Any] = {
        "conversation_id": bindparam("c"),
        "pid": bindparam("p"),
        "sid": bindparam("s"),
        "vote": bindparam("v"),
        "created_ms": bindparam("t"),
    }
    latest = _upsert_latest("postgresql").values(**columns).cte("latest")
    event = insert(VoteEventRow).values(**columns).cte("event")
    voted = select(LatestVoteRow.sid).where(
        LatestVoteRow.conversation_id == bindparam("c"), LatestVoteRow.pid == bindparam("p")
    )
    if not wake:
        return voted.add_cte(latest, event)
    woken = select(wake_up_workers(bindparam("c")).label("woken")).cte("woken")
    return voted.union_all(select(literal(-1)).select_from(woken)).add_cte(latest, event)


@dataclass(frozen=True)
class Watermark:
    """How far a worker has read a conversation's vote events.

    ``id``: the largest event id read. On SQLite (one writer, ids commit in order) every event
    up to it has been read. On PostgreSQL ids can commit out of order, so what has been read is
    told by ``tx`` instead: every event inserted by a transaction older than ``tx`` (the oldest
    transaction that was still running when they were read), and none younger.
    """

    id: int = 0
    tx: int = 0


@dataclass(frozen=True)
class NewVotes:
    """The vote events of a conversation past a watermark, as the math takes them."""

    #: Each (participant, statement)'s vote that counts among the new events (pid and sid as
    #: the participant and statement indices).
    events: VoteEvents
    #: The watermark after these events: the next read starts there.
    watermark: Watermark
    #: How many events were read (changed votes included).
    n_read: int
    #: One past the largest pid and sid among them (0 when there are none).
    n_participants: int
    n_statements: int


def read_new_votes(session: Session, conversation_id: int, after: Watermark) -> NewVotes:
    """The vote events past ``after``, each vote reduced by the one latest-vote rule.

    On PostgreSQL: first the oldest transaction still running (``pg_snapshot_xmin``), then, in
    a later snapshot, the events of the transactions from ``after.tx`` up to it: all of them have
    ended, so those events are final and none can appear later; the events of younger
    transactions wait for the next read. On SQLite: first the largest event id, then the events
    with ids past ``after.id`` up to it (ids commit in order, so every one of them is there).

    Read in bulk, with no Python object per event: the first computation of an imported
    conversation reads millions of them. PostgreSQL sends them by a binary ``COPY`` decoded as
    arrays (:mod:`.bulk`); SQLite packs each event into two integers (:func:`_sqlite_events`).
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        boundary = int(session.execute(_OLDEST_RUNNING).scalar_one())
        events, last_id = _postgres_events(session, conversation_id, after.tx, boundary)
    else:
        boundary = 0
        events, last_id = _sqlite_events(session, conversation_id, after.id)
    if not len(events):
        return NewVotes(VoteEvents.empty(), Watermark(after.id, max(after.tx, boundary)), 0, 0, 0)
    kept = events.take(latest_index(events))
    return NewVotes(
        kept,
        Watermark(max(after.id, last_id), max(after.tx, boundary)),
        len(events),
        int(events.participant.max()) + 1,
        int(events.statement.max()) + 1,
    )


_OLDEST_RUNNING = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
#: The inserting transaction of a vote event (PostgreSQL only; see :class:`VoteEventRow`).
EVENT_TX: ColumnElement[int] = literal_column("vote_events.tx", BigInteger)
#: A vote event as PostgreSQL's binary COPY sends it (:mod:`.bulk`).
_PG_EVENT = np.dtype(
    [
        ("id", np.int64),
        ("pid", np.int32),
        ("sid", np.int32),
        ("vote", np.int16),
        ("created_ms", np.int64),
    ]
)
# The math takes the events in any order: PostgreSQL need not sort them.
_NEW_BY_TX = (
    "SELECT id, pid, sid, vote, created_ms FROM vote_events "
    "WHERE conversation_id = {} AND tx >= {} AND tx < {}"
)

_NEW_IN_IDS = _NEW_BY_TX + " AND id >= {} AND id < {}"
_ID_RANGE = text("SELECT min(id), max(id) FROM vote_events WHERE conversation_id = :cid")
#: Ids of a conversation's vote events read by one query of its first read, at least.
AGGREGATED_IDS = 1 << 20


def _postgres_events(
    session: Session, conversation_id: int, after_tx: int, boundary: int
) -> tuple[VoteEvents, int]:
    """The events of the transactions from ``after_tx`` to ``boundary`` (excluded), and the
    largest id read (0: none).

    The first read of a conversation (maybe millions of events: an imported one) comes as
    arrays, a range of ids a query (:func:`.bulk.read_aggregated`); later reads, as rows.
    """
    if after_tx == 0:
        low, high = session.execute(_ID_RANGE, {"cid": conversation_id}).one()
        if low is None:
            return VoteEvents.empty(), 0
        step = max(AGGREGATED_IDS, (high - low) // 64 + 1)  # 64 queries at most
        bounds = (conversation_id, after_tx, boundary)
        tables = [
            read_aggregated(session, _NEW_IN_IDS, (*bounds, start, start + step), _PG_EVENT)
            for start in range(low, high + 1, step)
        ]
        table = np.concatenate(tables)
    else:
        table = read_all(session, _NEW_BY_TX, (conversation_id, after_tx, boundary), _PG_EVENT)
    events = VoteEvents(table["created_ms"], table["pid"], table["sid"], table["vote"])
    return events, int(table["id"].max()) if len(table) else 0


def _unpacked(packed: np.ndarray, created_ms: np.ndarray) -> VoteEvents:
    """Events from their packed pid, sid and vote (see :data:`_PACKED_BY_ID`) and times."""
    return VoteEvents(created_ms, packed >> 33, (packed >> 2) & 0x7FFFFFFF, (packed & 3) - 1)


_LAST_ID = "SELECT max(id) FROM vote_events WHERE conversation_id = ?"
_RANGE = "FROM vote_events WHERE conversation_id = ? AND id > ? AND id <= ? ORDER BY id"
#: pid, sid and vote in one integer (NULL when a pid or sid is too large for it), and the time:
#: SQLite makes a Python object of each value it returns, and two cost half of five.
_PACKED_BY_ID = (
    "SELECT CASE WHEN pid BETWEEN 0 AND 536870911 AND sid BETWEEN 0 AND 2147483647 "
    f"THEN (pid << 33) | (sid << 2) | (vote + 1) END, created_ms {_RANGE}"
)
_UNPACKED_BY_ID = f"SELECT pid, sid, vote, created_ms {_RANGE}"


def _sqlite_events(session: Session, conversation_id: int, after_id: int) -> tuple[VoteEvents, int]:
    """The events with ids past ``after_id``, and the largest id read (0: none)."""
    cursor = session.connection().connection.cursor()
    try:
        last_id = cursor.execute(_LAST_ID, (conversation_id,)).fetchone()[0]
        if last_id is None or last_id <= after_id:
            return VoteEvents.empty(), 0
        bounds = (conversation_id, after_id, last_id)
        try:
            cursor.execute(_PACKED_BY_ID, bounds)
            values = np.fromiter(_values(cursor), dtype=np.int64)
        except TypeError:  # a NULL: some pid is beyond what the packing holds
            cursor.execute(_UNPACKED_BY_ID, bounds)
            rows = np.fromiter(_values(cursor), dtype=np.int64)
            pid, sid, vote, created_ms = rows.reshape(-1, 4).T
            return VoteEvents(created_ms, pid, sid, vote), last_id
    finally:
        cursor.close()
    packed, created_ms = values.reshape(-1, 2).T
    return _unpacked(packed, created_ms), last_id


def _values(cursor: Any) -> Iterator[int]:
    """Every value of every row of ``cursor``, row after row."""
    return itertools.chain.from_iterable(cursor)


def latest_vote(session: Session, conversation_id: int, pid: int, sid: int) -> int | None:
    """The participant's vote on the statement that counts (None: they have not voted on it)."""
    return session.scalar(
        select(LatestVoteRow.vote).where(
            LatestVoteRow.conversation_id == conversation_id,
            LatestVoteRow.pid == pid,
            LatestVoteRow.sid == sid,
        )
    )


def participant_votes(session: Session, conversation_id: int, pid: int) -> list[tuple[int, int]]:
    """(sid, vote) of each statement the participant voted on, the vote that counts, by time."""
    rows = session.execute(
        select(LatestVoteRow.sid, LatestVoteRow.vote)
        .where(LatestVoteRow.conversation_id == conversation_id, LatestVoteRow.pid == pid)
        .order_by(LatestVoteRow.created_ms, LatestVoteRow.sid)
    ).all()
    return [(row.sid, row.vote) for row in rows]


def voted_sids(session: Session, conversation_id: int, pid: int) -> np.ndarray:
    """The statements this participant has voted on."""
    query = session.connection().execute(_VOTED, {"conversation_id": conversation_id, "pid": pid})
    rows = query.scalars().all()
    return np.fromiter(rows, dtype=np.int64, count=len(rows))


def statement_status(session: Session, conversation_id: int, sid: int) -> int:
    status = session.scalar(_STATUS, {"conversation_id": conversation_id, "sid": sid})
    if status is None:
        raise NotFound(f"no statement {sid} in conversation {conversation_id}")
    return status


def choose_next(
    candidates: np.ndarray, priority: np.ndarray, rng: np.random.Generator
) -> int | None:
    """Draw one of ``candidates`` (sids) at random, weighted by routing priority.

    ``priority`` is indexed by sid; sids beyond it (newer than the last math result) weigh
    :data:`NEW_STATEMENT_PRIORITY`. Statements with zero weight are drawn only when all are zero.
    """
    if len(candidates) == 0:
        return None
    weights = np.full(len(candidates), NEW_STATEMENT_PRIORITY)
    known = candidates < len(priority)
    weights[known] = priority[candidates[known]]
    weights = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    total = weights.sum()
    if total <= 0:
        return int(candidates[rng.integers(len(candidates))])
    pick = np.searchsorted(np.cumsum(weights), rng.random() * total, side="right")
    return int(candidates[min(pick, len(candidates) - 1)])
