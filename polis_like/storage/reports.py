"""Reports fixed to one result tick: pinning the tick so it outlives the pruning of old results.

``jobs.publish`` keeps the last ``KEEP_RESULTS`` results of a conversation and deletes older
ones, except pinned ones. A report's permalink (``/c/<id>/report/<tick>``) promises to show its
tick for as long as the conversation exists, so the first time a tick is shown in a report it is
pinned here. Pinning is a one-way flag on an existing row: the worker still writes every result,
the web only marks it kept.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import ResultRow
from .results import ResultsDocument


def pin(session: Session, conversation_id: int, tick: int) -> bool:
    """Keep the result of ``tick`` for good; False when it is not (or no longer) stored."""
    session.execute(
        update(ResultRow)
        .where(
            ResultRow.conversation_id == conversation_id,
            ResultRow.tick == tick,
            ResultRow.pinned.is_(False),  # a pinned row is not written again
        )
        .values(pinned=True)
    )
    return (
        session.scalar(
            select(ResultRow.pinned).where(
                ResultRow.conversation_id == conversation_id, ResultRow.tick == tick
            )
        )
        is not None
    )


def pinned_document(session: Session, conversation_id: int, tick: int) -> ResultsDocument | None:
    """Pin ``tick`` and return its document, or None when that tick is gone or never was.

    The caller commits. Pinning before reading means a concurrent prune either ran first (and
    the tick is reported gone) or finds the row pinned and leaves it.
    """
    if not pin(session, conversation_id, tick):
        return None
    text = session.scalar(
        select(ResultRow.result).where(
            ResultRow.conversation_id == conversation_id, ResultRow.tick == tick
        )
    )
    return ResultsDocument.from_json(text) if text is not None else None


def pinned_ticks(session: Session, conversation_id: int) -> list[int]:
    """The conversation's pinned ticks, oldest first."""
    return list(
        session.scalars(
            select(ResultRow.tick)
            .where(ResultRow.conversation_id == conversation_id, ResultRow.pinned.is_(True))
            .order_by(ResultRow.tick)
        )
    )
