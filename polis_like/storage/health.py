"""Is the service keeping up? The database answering, and the worker's lag.

The worker's lag is the age of the oldest vote event it has not read yet: past its
conversation's high-water mark (``math_jobs.high_water``, 0 for a conversation never computed;
on PostgreSQL its transaction mark ``math_jobs.read_tx``). The vote events are indexed by
(conversation, id), and on PostgreSQL by (conversation, tx), so each conversation's oldest unread
event is the first one past its mark: one index probe per conversation.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

from .db import now_ms
from .models import VISIBLE, ConversationRow, JobRow, VoteEventRow
from .votes import EVENT_TX


def ping(session: Session) -> None:
    """Raise the driver's error unless the database answers a trivial query."""
    session.execute(text("SELECT 1"))


def worker_lag_s(
    session: Session, at_ms: int | None = None, *, conversation_id: int | None = None
) -> float:
    """Seconds since the oldest vote event past its conversation's high-water mark; 0 if none.

    Of every conversation, or of ``conversation_id`` only (how stale its latest result is).
    """
    unread: ColumnElement[bool]
    order: ColumnElement[int]
    if session.get_bind().dialect.name == "postgresql":  # what was read is bounded by read_tx
        unread, order = EVENT_TX >= func.coalesce(JobRow.read_tx, 0), EVENT_TX
    else:
        unread = VoteEventRow.id > func.coalesce(JobRow.high_water, 0)
        order = VoteEventRow.id.expression
    first_unread = (
        select(VoteEventRow.created_ms)
        .where(VoteEventRow.conversation_id == ConversationRow.id, unread)
        .order_by(order)
        .limit(1)
        .scalar_subquery()
    )
    conversations = (
        select(first_unread.label("created_ms"))
        .select_from(ConversationRow)
        .outerjoin(JobRow, JobRow.conversation_id == ConversationRow.id)
        .where(VISIBLE)
    )
    if conversation_id is not None:
        conversations = conversations.where(ConversationRow.id == conversation_id)
    per_conversation = conversations.subquery()
    oldest = session.scalar(select(func.min(per_conversation.c.created_ms)))
    if oldest is None:
        return 0.0
    return max(0.0, ((now_ms() if at_ms is None else at_ms) - oldest) / 1000)
