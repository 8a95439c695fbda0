"""The math workers' protocol: which conversations need computing, leases, publishing, failures.

Each conversation has one ``math_jobs`` row. A worker takes a conversation's lease with one
conditional ``UPDATE`` (free, its own, or expired), renews it while it holds the conversation,
and publishes a result only while it still holds the lease, in the same transaction. So several
workers can share one database, a conversation is computed by one worker at a time, and a dead
worker's conversations pass to another once its leases run out. Lease times are wall-clock
times: the workers' clocks must agree to within a few seconds.

Every function takes a session whose transaction the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from . import history
from .db import now_ms
from .models import VISIBLE, ConversationRow, JobRow, ResultRow, StateRow, VoteEventRow
from .notify import notify_result
from .results import ResultsDocument
from .votes import EVENT_TX, Watermark

#: Results kept per conversation; older ticks are deleted as new ones are published.
KEEP_RESULTS = 10
#: The longest back-off after repeated failures, in seconds.
MAX_BACKOFF_S = 300.0


def dirty(session: Session) -> list[int]:
    """Conversations with vote events their latest result has not read, or a newer revision."""
    newest: ColumnElement[int]
    mark: ColumnElement[int]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # read_tx bounds what was read (votes.read_new_votes): an event of a transaction at
        # or past it is new, whatever its id.
        newest, mark = EVENT_TX, JobRow.read_tx.expression
    else:
        newest, mark = VoteEventRow.id.expression, JobRow.high_water.expression

    def unread(top: int | None, seen: int) -> bool:
        return top is not None and (top >= seen if postgres else top > seen)

    top_query = (
        select(func.max(newest))
        .select_from(VoteEventRow)
        .where(VoteEventRow.conversation_id == ConversationRow.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ConversationRow.id, ConversationRow.revision, top_query, mark, JobRow.revision)
        .join(JobRow, JobRow.conversation_id == ConversationRow.id)
        # A conversation still being imported is computed once its import ends.
        .where(VISIBLE)
    ).all()
    return [c for c, revision, top, seen, done in rows if unread(top, seen) or revision != done]


#: A worker computing one conversation for longer than this lets others take its other
#: conversations (one long first computation must not freeze every other result).
TAKE_OVER_AFTER_S = 2.0


def acquire(session: Session, conversation_id: int, owner: str, lease_s: float) -> bool:
    """Take (or keep) the conversation's lease; False when another worker holds it.

    A lease is free when nobody holds it, when it ran out, or when its holder has been
    computing another conversation for more than :data:`TAKE_OVER_AFTER_S` (and is not
    computing this one): the holder then loses it at its next renewal, and its save of the
    state never overwrites a newer one (:func:`save_state`).
    """
    now = time.time()
    other = aliased(JobRow)
    holder_busy = (
        select(other.conversation_id)
        .where(
            other.owner == JobRow.owner,
            other.conversation_id != JobRow.conversation_id,
            other.computing_since < now - TAKE_OVER_AFTER_S,
        )
        .exists()
    )
    taken = session.execute(
        update(JobRow)
        .where(
            JobRow.conversation_id == conversation_id,
            JobRow.owner.is_(None)
            | (JobRow.owner == owner)
            | (JobRow.lease_until < now)
            | (JobRow.computing_since.is_(None) & holder_busy),
        )
        .values(owner=owner, lease_until=now + lease_s, computing_since=None)
        .returning(JobRow.conversation_id)
    ).first()
    return taken is not None


def computing(session: Session, conversation_id: int, owner: str, busy: bool) -> None:
    """Record that ``owner`` starts (``busy``) or ends computing the conversation."""
    session.execute(
        update(JobRow)
        .where(JobRow.conversation_id == conversation_id, JobRow.owner == owner)
        .values(computing_since=time.time() if busy else None)
    )


def renew(
    session: Session, conversation_ids: Iterable[int], owner: str, lease_s: float
) -> set[int]:
    """Extend the unexpired leases ``owner`` holds among ``conversation_ids``; returns them."""
    ids = list(conversation_ids)
    if not ids:
        return set()
    now = time.time()
    session.execute(
        update(JobRow)
        .where(JobRow.conversation_id.in_(ids), JobRow.owner == owner, JobRow.lease_until >= now)
        .values(lease_until=now + lease_s)
    )
    return set(
        session.scalars(
            select(JobRow.conversation_id).where(
                JobRow.conversation_id.in_(ids), JobRow.owner == owner, JobRow.lease_until >= now
            )
        )
    )


def release(session: Session, owner: str, conversation_id: int | None = None) -> None:
    """Give up one lease of ``owner``, or all of them."""
    where = [JobRow.owner == owner]
    if conversation_id is not None:
        where.append(JobRow.conversation_id == conversation_id)
    session.execute(update(JobRow).where(*where).values(owner=None, lease_until=0.0))


def current_tick(session: Session, conversation_id: int) -> int:
    """The tick of the conversation's latest published result (0 before the first)."""
    return session.scalar(select(JobRow.tick).where(JobRow.conversation_id == conversation_id)) or 0


def current_ticks(session: Session, conversation_ids: Iterable[int]) -> dict[int, int]:
    """The latest tick of each of ``conversation_ids``."""
    rows = session.execute(
        select(JobRow.conversation_id, JobRow.tick).where(
            JobRow.conversation_id.in_(list(conversation_ids))
        )
    )
    return {conversation_id: tick for conversation_id, tick in rows}


def publish(
    session: Session,
    conversation_id: int,
    owner: str,
    lease_s: float,
    *,
    watermark: Watermark,
    revision: int,
    duration_ms: float,
    document: Callable[[int, int], ResultsDocument],
    positions: bytes,
) -> int | None:
    """Publish the next result while ``owner`` still holds the lease; returns its tick.

    ``document(tick, computed_ms)`` builds the results document. A success clears the last
    error and the failure count, and adds the tick's participation counts to the series of
    :mod:`.history` (kept for every tick). Returns None (and writes nothing) when the lease
    was lost.
    """
    now = time.time()
    tick = session.execute(
        update(JobRow)
        .where(
            JobRow.conversation_id == conversation_id,
            JobRow.owner == owner,
            JobRow.lease_until >= now,
        )
        .values(
            tick=JobRow.tick + 1,
            high_water=watermark.id,
            read_tx=watermark.tx,
            revision=revision,
            lease_until=now + lease_s,
            error=None,
            failures=0,
        )
        .returning(JobRow.tick)
    ).scalar_one_or_none()
    if tick is None:
        return None
    computed = now_ms()
    built = document(tick, computed)
    session.execute(
        insert(ResultRow).values(
            conversation_id=conversation_id,
            tick=tick,
            high_water=watermark.id,
            computed_ms=computed,
            duration_ms=duration_ms,
            result=built.to_json(),
            positions=positions,
        )
    )
    session.execute(
        delete(ResultRow).where(
            ResultRow.conversation_id == conversation_id,
            ResultRow.tick <= tick - KEEP_RESULTS,
            ResultRow.pinned.is_(False),  # a tick shown in a report stays (storage.reports)
        )
    )
    history.record(session, conversation_id, tick, computed, built.participation)
    notify_result(session, conversation_id)
    return tick


def reclaim_space(engine: Engine) -> None:
    """Make the space of deleted results and replaced states reusable at once.

    Publishing a result deletes the one ``KEEP_RESULTS`` ticks older, and a result holds every
    participant's position (a megabyte at 100k participants). On PostgreSQL a deleted row's
    space is reused only after a vacuum, and autovacuum looks at a table about once a minute:
    at a result a second the table would grow by tens of megabytes between its visits. The
    worker calls this every few seconds while it publishes. SQLite reuses freed pages by
    itself. A vacuum that finds the table locked skips it (the next call catches up).
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (SKIP_LOCKED) math_results, math_states")


def record_failure(session: Session, conversation_id: int, message: str) -> float:
    """Record a failed computation; returns how long to wait before the next try (seconds)."""
    failures = (
        session.execute(
            update(JobRow)
            .where(JobRow.conversation_id == conversation_id)
            .values(failures=JobRow.failures + 1, error=message[:2000], error_ms=now_ms())
            .returning(JobRow.failures)
        ).scalar_one_or_none()
        or 1
    )
    return min(MAX_BACKOFF_S, 2.0**failures)


# -- saved states ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedState:
    """A worker's saved math state of a conversation, to resume from."""

    tick: int
    watermark: Watermark
    revision: int
    payload: bytes
    #: Vote events up to ``watermark``: the participation count the state stands for.
    n_events: int


def load_state(session: Session, conversation_id: int) -> SavedState | None:
    row = session.get(StateRow, conversation_id)
    if row is None:
        return None
    read: ColumnElement[bool]
    if session.get_bind().dialect.name == "postgresql":
        read = EVENT_TX < row.read_tx
    else:
        read = VoteEventRow.id <= row.high_water
    n_events = session.scalar(
        select(func.count())
        .select_from(VoteEventRow)
        .where(VoteEventRow.conversation_id == conversation_id, read)
    )
    return SavedState(
        tick=row.tick,
        watermark=Watermark(row.high_water, row.read_tx),
        revision=row.revision,
        payload=row.state,
        n_events=n_events or 0,
    )


def save_state(
    session: Session,
    conversation_id: int,
    *,
    tick: int,
    watermark: Watermark,
    revision: int,
    payload: bytes,
) -> None:
    """Save a state, never over a newer one saved by a worker that took the lease over."""
    values = {
        "tick": tick,
        "high_water": watermark.id,
        "read_tx": watermark.tx,
        "revision": revision,
        "state": payload,
        "saved_ms": now_ms(),
    }
    if session.get(StateRow, conversation_id) is None:
        session.execute(insert(StateRow).values(conversation_id=conversation_id, **values))
    else:
        session.execute(
            update(StateRow)
            .where(StateRow.conversation_id == conversation_id, StateRow.tick <= tick)
            .values(**values)
        )
