"""Participation over time: one row per published result, for the dashboard's chart.

The worker's :func:`~.jobs.publish` is the only writer, in the transaction that publishes the
result, so the series and the results never disagree. Rows are kept for every tick (a few
integers each), unlike the results themselves, of which only the last few are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .models import ParticipationRow, StatementRow
from .results import Participation


@dataclass(frozen=True)
class Point:
    """The participation counts at one tick."""

    tick: int
    computed_ms: int
    participation: Participation


def record(
    session: Session, conversation_id: int, tick: int, computed_ms: int, counts: Participation
) -> None:
    """Add the point of a newly published tick (called by ``jobs.publish`` only)."""
    session.execute(
        insert(ParticipationRow).values(
            conversation_id=conversation_id,
            tick=tick,
            computed_ms=computed_ms,
            participants=counts.participants,
            votes=counts.votes,
            statements=counts.statements,
            accepted=counts.accepted,
            pending=counts.pending,
            rejected=counts.rejected,
        )
    )


def series(session: Session, conversation_id: int) -> list[Point]:
    """Every tick's counts, oldest first."""
    rows = session.execute(
        select(ParticipationRow)
        .where(ParticipationRow.conversation_id == conversation_id)
        .order_by(ParticipationRow.tick)
    ).scalars()
    return [
        Point(
            tick=row.tick,
            computed_ms=row.computed_ms,
            participation=Participation(
                participants=row.participants,
                votes=row.votes,
                statements=row.statements,
                accepted=row.accepted,
                pending=row.pending,
                rejected=row.rejected,
            ),
        )
        for row in rows
    ]


def statement_texts(
    session: Session, conversation_id: int, statuses: tuple[int, ...] | None
) -> dict[int, str]:
    """Statement texts by sid: of the given statuses only, or all of them (None: for staff)."""
    query = select(StatementRow.sid, StatementRow.text).where(
        StatementRow.conversation_id == conversation_id
    )
    if statuses is not None:
        query = query.where(StatementRow.status.in_(statuses))
    return {sid: text for sid, text in session.execute(query.order_by(StatementRow.sid))}
