"""The moderation queue: counts per status, near-duplicates, authors' bans, the named log.

What the moderation page asks of storage beyond :mod:`.conversations`. Near-duplicates are
found by a normalised form of the text (case, spacing, punctuation, symbols and accents
folded), compared over all of the conversation's statements in one pass: statement texts never
change, so each text's form is computed once per process and cached.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .conversations import STATUS_OF
from .models import (
    PENDING,
    AccountRow,
    ConversationRow,
    ModerationRow,
    ParticipantRow,
    StatementRow,
)

#: At most this many near-duplicates are given per statement.
NEAR_MAX = 5


@functools.lru_cache(maxsize=100_000)
def near_key(text: str) -> str:
    """The form two near-duplicate statements share: "Cafés, please!" and "cafes please" agree.

    NFKD splits accents off their letters (then dropped), case is folded, and punctuation,
    symbols and runs of white space become one space.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    letters = (
        " " if unicodedata.category(c)[0] in "PSZC" else c
        for c in decomposed.casefold()
        if not unicodedata.combining(c)
    )
    return " ".join("".join(letters).split())


class Near(NamedTuple):
    sid: int
    text: str
    status: str


def near_duplicates(
    session: Session, conversation_id: int, sids: Iterable[int]
) -> dict[int, list[Near]]:
    """For each of ``sids``, the other statements of the conversation with the same near key
    (oldest first, at most :data:`NEAR_MAX`); statements with none are left out."""
    wanted = set(sids)
    if not wanted:
        return {}
    groups: dict[str, list[Near]] = {}
    keys: dict[int, str] = {}
    rows = session.execute(
        select(StatementRow.sid, StatementRow.text, StatementRow.status)
        .where(StatementRow.conversation_id == conversation_id)
        .order_by(StatementRow.sid)
    )
    for sid, text, status in rows:
        key = near_key(text)
        if not key:
            continue
        groups.setdefault(key, []).append(Near(sid, text, STATUS_OF[status]))
        if sid in wanted:
            keys[sid] = key
    found = {}
    for sid, key in keys.items():
        others = [n for n in groups[key] if n.sid != sid][:NEAR_MAX]
        if others:
            found[sid] = others
    return found


def status_counts(session: Session, conversation_id: int, *, query: str | None = None) -> dict:
    """How many statements of the conversation have each status (matching ``query``, if any)."""
    where = [StatementRow.conversation_id == conversation_id]
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(StatementRow.text.ilike(f"%{escaped}%", escape="\\"))
    counts = dict.fromkeys(STATUS_OF.values(), 0)
    for status, n in session.execute(
        select(StatementRow.status, func.count()).where(*where).group_by(StatementRow.status)
    ):
        counts[STATUS_OF[status]] = n
    return counts


def banned_among(session: Session, conversation_id: int, pids: Iterable[int]) -> set[int]:
    """Which of ``pids`` are banned from the conversation."""
    wanted = sorted(set(pids))
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(ParticipantRow.pid).where(
                ParticipantRow.conversation_id == conversation_id,
                ParticipantRow.pid.in_(wanted),
                ParticipantRow.banned.is_(True),
            )
        )
    )


class LogEntry(NamedTuple):
    action: str
    sid: int | None
    pid: int | None
    account_id: int | None
    account_name: str | None
    created_ms: int


def named_log(session: Session, conversation_id: int, *, offset: int, limit: int) -> list[LogEntry]:
    """One page of the moderation log, newest first, with each account's name (None once the
    account is deleted)."""
    rows = session.execute(
        select(
            ModerationRow.action,
            ModerationRow.sid,
            ModerationRow.pid,
            ModerationRow.account_id,
            AccountRow.name,
            ModerationRow.created_ms,
        )
        .outerjoin(AccountRow, AccountRow.id == ModerationRow.account_id)
        .where(ModerationRow.conversation_id == conversation_id)
        .order_by(ModerationRow.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [LogEntry(*row) for row in rows]


def queue_states(session: Session, conversation_ids: Iterable[int]) -> dict[int, int]:
    """The revision of each conversation: it moves with every new statement or decision."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(ConversationRow.id, ConversationRow.revision).where(ConversationRow.id.in_(ids))
    )
    return {conversation_id: revision for conversation_id, revision in rows}


def pending_count(session: Session, conversation_id: int) -> int:
    """How many statements of the conversation wait for a moderator."""
    return (
        session.scalar(
            select(func.count())
            .select_from(StatementRow)
            .where(StatementRow.conversation_id == conversation_id, StatementRow.status == PENDING)
        )
        or 0
    )
