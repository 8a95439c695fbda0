"""The participant's path: who they are, their votes, and which statement they see next.

This is the hot path of the service (a later load test sends thousands of votes a second), so it
speaks SQLAlchemy Core and keeps each request to a few short statements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from polis_like.errors import NotFound

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
    ParticipantRow.conversation_id == bindparam("conversation_id"), ParticipantRow.xid == bindparam("key"))
_BY_VISITOR = select(ParticipantRow.pid, ParticipantRow.banned).where(
    ParticipantRow.conversation_id == bindparam("conversation_id"),
    ParticipantRow.visitor == bindparam("key"))
_VOTED = select(LatestVoteRow.sid).where(LatestVoteRow.conversation_id == bindparam("conversation_id"),
                                      LatestVoteRow.pid == bindparam("pid"))
_STATUS = select(StatementRow.status).where(StatementRow.conversation_id == bindparam("conversation_id"),
                                         StatementRow.sid == bindparam("sid"))
_INSERT_EVENT = insert(VoteEventRow)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_UPSERTS = {}


def find_participant(session: Session, conversation_id: int, who: Who) -> tuple[int, bool] | None:
    """(pid, banned) of the participant, or None when they have not taken part yet."""
    query, key = (_BY_XID, who.xid) if who.xid is not None else (_BY_VISITOR, who.visitor)
    if key is None:
        return None
    row = session.execute(query, {"conversation_id": conversation_id, "key": key}).first()
    return (row.pid, row.banned) if row else None


def join(session: Session, conversation_id: int, who: Who) -> tuple[int, bool]:
    """The participant's (pid, banned), making them a participant on their first vote or statement."""
    found = find_participant(session, conversation_id, who)
    if found is not None:
        return found
    pid = next_id(session, conversation_id, "next_pid")
    try:
        with session.begin_nested():
            session.execute(insert(ParticipantRow).values(
                conversation_id=conversation_id, pid=pid, visitor=who.visitor, xid=who.xid,
                banned=False, created_ms=now_ms()))
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
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=["conversation_id", "pid", "sid"],
            set_={"vote": statement.excluded.vote, "created_ms": statement.excluded.created_ms})
    return _UPSERTS[dialect]


def cast_vote(session: Session, conversation_id: int, pid: int, sid: int, vote: int) -> int:
    """Record a vote (replacing the participant's earlier vote on the statement); returns its time.

    On PostgreSQL, votes of one conversation take a transaction-scoped advisory lock before
    their event row, so that vote event ids commit in increasing order within a conversation
    and the worker's high-water mark never skips a vote that commits late. SQLite has a single
    writer, so there ids always commit in order.
    """
    at = now_ms()
    values = {"conversation_id": conversation_id, "pid": pid, "sid": sid, "vote": vote,
              "created_ms": at}
    dialect = session.get_bind().dialect.name
    session.execute(_upsert_latest(dialect), values)
    if dialect == "postgresql":
        session.execute(_LOCK, {"key": (1 << 32) | conversation_id})
    session.execute(_INSERT_EVENT, values)
    notify_change(session, conversation_id)
    return at


def voted_sids(session: Session, conversation_id: int, pid: int) -> np.ndarray:
    """The statements this participant has voted on."""
    rows = session.execute(_VOTED, {"conversation_id": conversation_id, "pid": pid}).scalars().all()
    return np.fromiter(rows, dtype=np.int64, count=len(rows))


def statement_status(session: Session, conversation_id: int, sid: int) -> int:
    status = session.scalar(_STATUS, {"conversation_id": conversation_id, "sid": sid})
    if status is None:
        raise NotFound(f"no statement {sid} in conversation {conversation_id}")
    return status


def choose_next(candidates: np.ndarray, priority: np.ndarray, rng: np.random.Generator) -> int | None:
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
