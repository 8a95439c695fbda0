"""The participant's path: who they are, their votes, and which statement they see next.

This is the hot path of the service (a later load test sends thousands of votes a second), so it
speaks SQLAlchemy Core and keeps each request to a few short statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from polis_like.conversation import VoteEvents
from polis_like.errors import NotFound
from polis_like.math.matrix import latest_index

from .conversations import next_id
from .db import now_ms
from .models import LatestVoteRow, ParticipantRow, StatementRow, VoteEventRow
from .notify import notify_change

#: The routing weight of a statement the math has not seen yet: the Pol.is priority of a
#: statement with no votes and extremity 0, ((1 - 1/2) * 1 * 1/2 * (1 + 8))^2.
NEW_STATEMENT_PRIORITY = (0.25 * 9.0) ** 2


@dataclass(frozen=True)
class Who:
    """How a request identifies its participant: the cookie's visitor id and an optional xid."""

    visitor: str | None
    xid: str | None = None


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
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_UPSERTS: dict[str, Any] = {}


def find_participant(session: Session, conversation_id: int, who: Who) -> tuple[int, bool] | None:
    """(pid, banned) of the participant, or None when they have not taken part yet."""
    query, key = (_BY_XID, who.xid) if who.xid is not None else (_BY_VISITOR, who.visitor)
    if key is None:
        return None
    row = session.execute(query, {"conversation_id": conversation_id, "key": key}).first()
    return (row.pid, row.banned) if row else None


def join(session: Session, conversation_id: int, who: Who) -> tuple[int, bool]:
    """The participant's (pid, banned); they become a participant on their first vote or
    statement."""
    found = find_participant(session, conversation_id, who)
    if found is not None:
        return found
    pid = next_id(session, conversation_id, "next_pid")
    try:
        with session.begin_nested():
            session.execute(
                insert(ParticipantRow).values(
                    conversation_id=conversation_id,
                    pid=pid,
                    visitor=who.visitor,
                    xid=who.xid,
                    banned=False,
                    created_ms=now_ms(),
                )
            )
    except IntegrityError:  # the same visitor's other request got there first
        found = find_participant(session, conversation_id, who)
        if found is None:
            raise
        return found
    return pid, False


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

    On PostgreSQL, votes of one conversation take a transaction-scoped advisory lock before
    their event row, so that vote event ids commit in increasing order within a conversation
    and the worker's high-water mark never skips a vote that commits late. SQLite has a single
    writer, so there ids always commit in order.
    """
    at = now_ms() if at is None else at
    values = {
        "conversation_id": conversation_id,
        "pid": pid,
        "sid": sid,
        "vote": vote,
        "created_ms": at,
    }
    dialect = session.get_bind().dialect.name
    session.execute(_upsert_latest(dialect), values)
    if dialect == "postgresql":
        session.execute(_LOCK, {"key": (1 << 32) | conversation_id})
    session.execute(_INSERT_EVENT, values)
    notify_change(session, conversation_id)
    return at


@dataclass(frozen=True)
class NewVotes:
    """The vote events of a conversation past a high-water mark, as the math takes them."""

    #: Each (participant, statement)'s vote that counts among the new events (pid and sid as
    #: the participant and statement indices).
    events: VoteEvents
    #: The id of the last event read: the next high-water mark.
    high_water: int
    #: How many events were read (changed votes included).
    n_read: int
    #: One past the largest pid and sid among them (0 when there are none).
    n_participants: int
    n_statements: int


def read_new_votes(session: Session, conversation_id: int, after: int) -> NewVotes:
    """The vote events with ids past ``after``, each vote reduced by the one latest-vote rule.

    Read through the driver's cursor in chunks: building SQLAlchemy rows for millions of votes
    (the first computation of an imported conversation) costs many times the query itself.
    """
    table = _event_table(session, conversation_id, after)
    if not len(table):
        return NewVotes(VoteEvents.empty(), after, 0, 0, 0)
    events = VoteEvents(table[:, 4], table[:, 1], table[:, 2], table[:, 3])
    kept = events.take(latest_index(events))
    return NewVotes(
        kept, int(table[-1, 0]), len(table), int(table[:, 1].max()) + 1, int(table[:, 2].max()) + 1
    )


def _event_table(session: Session, conversation_id: int, after: int) -> np.ndarray:
    """(id, pid, sid, vote, created_ms) rows past ``after`` as an int64 array, in id order."""
    placeholder = "%s" if session.get_bind().dialect.name == "postgresql" else "?"
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            "SELECT id, pid, sid, vote, created_ms FROM vote_events "
            f"WHERE conversation_id = {placeholder} AND id > {placeholder} ORDER BY id",
            (conversation_id, after),
        )
        chunks = []
        while True:
            rows = cursor.fetchmany(200_000)
            if not rows:
                break
            chunks.append(np.array(rows, dtype=np.int64))
    finally:
        cursor.close()
    return np.concatenate(chunks) if chunks else np.empty((0, 5), np.int64)


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
    rows = session.execute(_VOTED, {"conversation_id": conversation_id, "pid": pid}).scalars().all()
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
