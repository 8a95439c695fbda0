"""What the math worker reads for one update of a conversation, read consistently.

Participants and statements keep joining while the worker reads. The conversation row (its
revision and id counters) is read first and the votes last, and the matrix is sized from all of
them, so a participant or statement that appears between two reads is simply counted: the
update never meets a vote from outside its matrix. The revision read first is the one the
update stands for; a change after it makes the next update re-read the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from polis_like.errors import NotFound

from .conversations import visible_statuses
from .models import ACCEPTED, PENDING, REJECTED, ConversationRow, ParticipantRow, StatementRow
from .results import Participation
from .votes import NewVotes, Watermark, read_new_votes


@dataclass(frozen=True)
class MathInput:
    """One update's input: the new votes, the matrix size and, when asked, moderation and bans."""

    votes: NewVotes
    revision: int
    n_participants: int
    n_statements: int
    #: The math's other inputs, by sid and pid (None when they were not asked for).
    moderated_out: np.ndarray | None
    meta: np.ndarray | None
    banned: np.ndarray | None

    def changes(self) -> dict:
        """Keyword arguments of :func:`polis_like.math.update` other than the events."""
        changes: dict = {"n_participants": self.n_participants, "n_statements": self.n_statements}
        if self.moderated_out is not None:
            changes.update(moderated_out=self.moderated_out, meta=self.meta, banned=self.banned)
        return changes


def read_math_input(
    session: Session, conversation_id: int, *, after: Watermark, revision_seen: int | None
) -> MathInput:
    """The votes past the watermark ``after``; and the moderation and bans when the
    conversation's revision is not ``revision_seen`` (always when it is None)."""
    head = session.execute(
        select(
            ConversationRow.revision,
            ConversationRow.next_pid,
            ConversationRow.next_sid,
            ConversationRow.moderation,
        ).where(ConversationRow.id == conversation_id)
    ).first()
    if head is None:
        raise NotFound(f"no conversation {conversation_id}")
    statements = banned_pids = None
    if revision_seen is None or head.revision != revision_seen:
        statements = session.execute(
            select(StatementRow.sid, StatementRow.status, StatementRow.is_meta).where(
                StatementRow.conversation_id == conversation_id
            )
        ).all()
        banned_pids = list(
            session.scalars(
                select(ParticipantRow.pid).where(
                    ParticipantRow.conversation_id == conversation_id, ParticipantRow.banned
                )
            )
        )
    votes = read_new_votes(session, conversation_id, after)
    n_statements = max(
        head.next_sid, votes.n_statements, 1 + max((s.sid for s in statements or ()), default=-1)
    )
    n_participants = max(
        head.next_pid, votes.n_participants, 1 + max(banned_pids or (), default=-1)
    )
    out = meta = banned = None
    if statements is not None:
        shown = visible_statuses(head.moderation)
        out = np.zeros(n_statements, bool)
        meta = np.zeros(n_statements, bool)
        for sid, status, is_meta in statements:
            out[sid] = status not in shown
            meta[sid] = is_meta
        banned = np.zeros(n_participants, bool)
        banned[banned_pids] = True
    return MathInput(
        votes=votes,
        revision=head.revision,
        n_participants=n_participants,
        n_statements=n_statements,
        moderated_out=out,
        meta=meta,
        banned=banned,
    )


def participation(session: Session, conversation_id: int, n_events: int) -> Participation:
    """The participation counts of a result that includes ``n_events`` vote events."""
    counts = dict(
        session.execute(
            select(StatementRow.status, func.count())
            .where(StatementRow.conversation_id == conversation_id)
            .group_by(StatementRow.status)
        ).all()
    )
    participants = session.scalar(
        select(func.count())
        .select_from(ParticipantRow)
        .where(ParticipantRow.conversation_id == conversation_id)
    )
    return Participation(
        participants=participants or 0,
        votes=n_events,
        statements=sum(counts.values()),
        accepted=counts.get(ACCEPTED, 0),
        pending=counts.get(PENDING, 0),
        rejected=counts.get(REJECTED, 0),
    )
