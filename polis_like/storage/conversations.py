"""Conversations, their statements and moderation: the operations the API and import share."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from polis_like.errors import Conflict, InputError, NotFound

from .db import now_ms
from .models import (
    ACCEPTED,
    MODERATION_MODES,
    PENDING,
    REJECTED,
    VISIBLE,
    XID_MODES,
    ConversationRow,
    JobRow,
    ModerationRow,
    ParticipantRow,
    StatementRow,
)
from .notify import notify_change

TOPIC_MAX = 500
DESCRIPTION_MAX = 10_000
STATEMENT_MAX = 1000  # characters
STATUS_NAMES = {"pending": PENDING, "accepted": ACCEPTED, "rejected": REJECTED}
STATUS_OF = {v: k for k, v in STATUS_NAMES.items()}
_ACTIONS = {ACCEPTED: "accept", REJECTED: "reject", PENDING: "unmoderate"}

SETTINGS = {
    "topic": str,
    "description": str,
    "is_open": bool,
    "moderation": str,
    "write_enabled": bool,
    "map_enabled": bool,
    "xid_mode": str,
    "invite_code": (str, type(None)),
}

#: An invite code: what fits in a link unescaped, long enough not to be guessed in a day of
#: rate-limited tries.
_INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{6,64}")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Explicit bidirectional embeddings, overrides and isolates: they can make text read
#: differently from how it is stored ("Trojan Source"). The marks U+200E and U+200F stay.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
#: Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern).
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(char: str) -> bool:
    """Whether ``char`` draws nothing: white space, format characters (U+200B, soft hyphens,
    joiners), combining marks on their own, and the blank letters above."""
    return char in _BLANK or char.isspace() or unicodedata.category(char) in ("Cf", "Mn", "Me")


def clean_text(text: object, *, what: str, limit: int, allow_empty: bool = False) -> str:
    """Trimmed, NFC-normalised text; refuses non-strings, control characters and over-long text."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string")
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters long; the limit is {limit}")
    if _CONTROL.search(text):
        raise InputError(f"{what} contains control characters")
    if _BIDI.search(text):
        raise InputError(
            f"{what} contains bidirectional override characters (U+202A to U+202E, "
            "U+2066 to U+2069), which can make text read differently from what is stored"
        )
    if all(_invisible(char) for char in text):
        if text:
            raise InputError(f"{what} has no visible characters")
        if not allow_empty:
            raise InputError(f"{what} is empty")
    return text


def text_key(text: str) -> str:
    """What two statements must share to count as duplicates: case and white space folded,
    format characters (zero-width spaces and joiners, soft hyphens) left out."""
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    folded = " ".join(unicodedata.normalize("NFKC", visible).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()


def check_settings(values: dict, *, creating: bool) -> dict:
    """Validate conversation settings given as JSON; returns them cleaned."""
    if not isinstance(values, dict):
        raise InputError("the body must be a JSON object")
    unknown = sorted(set(values) - set(SETTINGS) - ({"seed_statements"} if creating else set()))
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    cleaned = {}
    for name, kind in SETTINGS.items():
        if name not in values:
            continue
        value = values[name]
        if kind is bool and not isinstance(value, bool):
            raise InputError(f"{name} must be true or false")
        if kind is str and not isinstance(value, str):
            raise InputError(f"{name} must be a string")
        if isinstance(kind, tuple) and not isinstance(value, kind):
            raise InputError(f"{name} must be a string or null")
        cleaned[name] = value
    if "topic" in cleaned:
        cleaned["topic"] = clean_text(cleaned["topic"], what="topic", limit=TOPIC_MAX)
    elif creating:
        raise InputError("topic is required")
    if "description" in cleaned:
        cleaned["description"] = clean_text(
            cleaned["description"], what="description", limit=DESCRIPTION_MAX, allow_empty=True
        )
    if cleaned.get("moderation", "open") not in MODERATION_MODES:
        raise InputError("moderation must be 'strict' or 'open'")
    if cleaned.get("xid_mode", "off") not in XID_MODES:
        raise InputError("xid_mode must be 'off', 'optional' or 'required'")
    if "invite_code" in cleaned:
        code = (cleaned["invite_code"] or "").strip() or None
        if code is not None and not _INVITE_CODE.fullmatch(code):
            raise InputError(
                "invite_code must be 6 to 64 letters, digits, '-' or '_' (or null for none)"
            )
        cleaned["invite_code"] = code
    return cleaned


def create_conversation(
    session: Session,
    settings: dict,
    *,
    owner_id: int | None = None,
    seeds: Sequence[str] = (),
    created_ms: int | None = None,
    extra: dict | None = None,
) -> ConversationRow:
    """A new conversation with ``settings`` (see :func:`check_settings`) and seed statements."""
    conversation = ConversationRow(
        topic=settings["topic"],
        description=settings.get("description", ""),
        is_open=settings.get("is_open", True),
        moderation=settings.get("moderation", "open"),
        write_enabled=settings.get("write_enabled", True),
        map_enabled=settings.get("map_enabled", True),
        xid_mode=settings.get("xid_mode", "off"),
        invite_code=settings.get("invite_code"),
        created_ms=created_ms or now_ms(),
        owner_id=owner_id,
        next_pid=0,
        next_sid=0,
        revision=0,
        extra=json.dumps(extra or {}),
    )
    session.add(conversation)
    session.flush()
    session.add(
        JobRow(conversation_id=conversation.id, owner=None, lease_until=0.0, tick=0, failures=0)
    )
    for text in seeds:
        add_statement(session, conversation, text, author_pid=None, seed=True)
    session.flush()
    return conversation


#: What a participant's request needs of a conversation, with its latest tick.
PARTICIPANT_VIEW = (
    select(
        ConversationRow.id,
        ConversationRow.is_open,
        ConversationRow.moderation,
        ConversationRow.write_enabled,
        ConversationRow.map_enabled,
        ConversationRow.xid_mode,
        ConversationRow.invite_code,
        ConversationRow.revision,
        JobRow.tick,
    )
    .join(JobRow, JobRow.conversation_id == ConversationRow.id)
    .where(ConversationRow.id == bindparam("conversation_id"), VISIBLE)
)


def participant_view(session: Session, conversation_id: int) -> Row:
    """What a participant's request needs of a conversation, with its latest tick (one query)."""
    row = (
        session.connection().execute(PARTICIPANT_VIEW, {"conversation_id": conversation_id}).first()
    )
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return row


def get_conversation(session: Session, conversation_id: int) -> ConversationRow:
    conversation = session.get(ConversationRow, conversation_id)
    if conversation is None or conversation.importing_ms is not None:
        raise NotFound(f"no conversation {conversation_id}")
    return conversation


def update_settings(
    session: Session, conversation: ConversationRow, settings: dict, account_id: int | None
) -> None:
    for name, value in settings.items():
        setattr(conversation, name, value)
    bump_revision(session, conversation.id)
    log(session, conversation.id, account_id, "settings")


def bump_revision(session: Session, conversation_id: int) -> None:
    """Tell the worker that the math's input other than votes changed."""
    session.execute(
        update(ConversationRow)
        .where(ConversationRow.id == conversation_id)
        .values(revision=ConversationRow.revision + 1)
    )
    notify_change(session, conversation_id)


def sizes(session: Session, conversation_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(statements, participants) of each conversation: rows, not id counters (an import keeps
    the export's ids, which need not be dense)."""
    statements = dict(
        session.execute(
            select(StatementRow.conversation_id, func.count())
            .where(StatementRow.conversation_id.in_(conversation_ids))
            .group_by(StatementRow.conversation_id)
        ).all()
    )
    participants = dict(
        session.execute(
            select(ParticipantRow.conversation_id, func.count())
            .where(ParticipantRow.conversation_id.in_(conversation_ids))
            .group_by(ParticipantRow.conversation_id)
        ).all()
    )
    return {c: (statements.get(c, 0), participants.get(c, 0)) for c in conversation_ids}


def first_conversation_id(session: Session) -> int | None:
    """The oldest conversation's id (None when there is none)."""
    return session.scalar(select(func.min(ConversationRow.id)).where(VISIBLE))


def list_conversations(
    session: Session, *, offset: int, limit: int, where: ColumnElement[bool] | None = None
) -> list[ConversationRow]:
    """One page of conversations, newest first; only those meeting ``where`` when given."""
    query = select(ConversationRow).where(VISIBLE)
    if where is not None:
        query = query.where(where)
    return list(
        session.scalars(query.order_by(ConversationRow.id.desc()).offset(offset).limit(limit))
    )


def get_statement(session: Session, conversation_id: int, sid: int) -> StatementRow | None:
    return session.scalar(
        select(StatementRow).where(
            StatementRow.conversation_id == conversation_id, StatementRow.sid == sid
        )
    )


def moderation_log(
    session: Session, conversation_id: int, *, offset: int, limit: int
) -> list[ModerationRow]:
    """One page of the conversation's moderation log, newest first."""
    return list(
        session.scalars(
            select(ModerationRow)
            .where(ModerationRow.conversation_id == conversation_id)
            .order_by(ModerationRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def next_id(session: Session, conversation_id: int, column: str) -> int:
    """Hand out the next pid or sid of a conversation (the row update serialises callers)."""
    counter = getattr(ConversationRow, column)
    value = session.execute(
        update(ConversationRow)
        .where(ConversationRow.id == conversation_id)
        .values({column: counter + 1})
        .returning(counter)
    ).scalar_one()
    return value - 1


def add_statement(
    session: Session,
    conversation: ConversationRow,
    text: object,
    *,
    author_pid: int | None,
    seed: bool = False,
    status: int | None = None,
    is_meta: bool = False,
    created_ms: int | None = None,
    sid: int | None = None,
) -> StatementRow:
    """Store a statement; pending under strict moderation unless it is a seed, shown under open.

    A statement whose text equals another's (case and spacing aside) raises :class:`Conflict`.
    """
    text = clean_text(text, what="text", limit=STATEMENT_MAX)
    key = text_key(text)
    duplicate = session.scalar(
        select(StatementRow.sid).where(
            StatementRow.conversation_id == conversation.id, StatementRow.text_key == key
        )
    )
    if duplicate is not None:
        raise Conflict(f"statement {duplicate} already says this")
    if status is None:
        status = ACCEPTED if seed or conversation.moderation == "open" else PENDING
    if sid is None:
        sid = next_id(session, conversation.id, "next_sid")
    statement = StatementRow(
        conversation_id=conversation.id,
        sid=sid,
        text=text,
        text_key=key,
        author_pid=author_pid,
        status=status,
        is_seed=seed,
        is_meta=is_meta,
        created_ms=created_ms or now_ms(),
    )
    try:
        with session.begin_nested():
            session.add(statement)
    except IntegrityError:
        raise Conflict("this statement was just submitted") from None
    bump_revision(session, conversation.id)
    return statement


def visible_statuses(moderation: str) -> tuple[int, ...]:
    """The statuses of the statements participants see and the math counts: the one rule.

    Strict moderation shows accepted statements only; open moderation all but rejected ones.
    """
    return (ACCEPTED,) if moderation == "strict" else (ACCEPTED, PENDING)


def visible_statements(
    session: Session, conversation_id: int, moderation: str
) -> list[tuple[int, str, bool]]:
    """(sid, text, is_meta) of every statement participants may see, by sid."""
    rows = session.execute(
        select(StatementRow.sid, StatementRow.text, StatementRow.is_meta)
        .where(
            StatementRow.conversation_id == conversation_id,
            StatementRow.status.in_(visible_statuses(moderation)),
        )
        .order_by(StatementRow.sid)
    ).all()
    return [(r.sid, r.text, r.is_meta) for r in rows]


def is_visible(conversation: ConversationRow, status: int) -> bool:
    """Whether participants may see a statement of this status."""
    return status in visible_statuses(conversation.moderation)


def list_statements(
    session: Session,
    conversation_id: int,
    *,
    statuses: list[int] | None = None,
    query: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[StatementRow], int]:
    """One page of statements (oldest first) and how many match in all."""
    where = [StatementRow.conversation_id == conversation_id]
    if statuses is not None:
        where.append(StatementRow.status.in_(statuses))
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(StatementRow.text.ilike(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(StatementRow).where(*where)) or 0
    rows = session.scalars(
        select(StatementRow).where(*where).order_by(StatementRow.sid).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def moderate(
    session: Session,
    conversation_id: int,
    sids: list[int],
    *,
    status: int | None = None,
    is_meta: bool | None = None,
    account_id: int | None,
) -> list[StatementRow]:
    """Accept or reject (and mark meta or not) several statements at once; all or nothing."""
    sids = sorted(set(sids))
    found = session.scalars(
        select(StatementRow).where(
            StatementRow.conversation_id == conversation_id, StatementRow.sid.in_(sids)
        )
    ).all()
    missing = sorted(set(sids) - {s.sid for s in found})
    if missing:
        raise NotFound(f"no statement {missing[0]} in conversation {conversation_id}")
    for statement in found:
        if status is not None and statement.status != status:
            statement.status = status
            log(session, conversation_id, account_id, _ACTIONS[status], sid=statement.sid)
        if is_meta is not None and statement.is_meta != is_meta:
            statement.is_meta = is_meta
            log(
                session,
                conversation_id,
                account_id,
                "meta" if is_meta else "unmeta",
                sid=statement.sid,
            )
    bump_revision(session, conversation_id)
    return sorted(found, key=lambda s: s.sid)


def set_banned(
    session: Session, conversation_id: int, pid: int, banned: bool, account_id: int | None
) -> ParticipantRow:
    participant = session.scalar(
        select(ParticipantRow).where(
            ParticipantRow.conversation_id == conversation_id, ParticipantRow.pid == pid
        )
    )
    if participant is None:
        raise NotFound(f"no participant {pid} in conversation {conversation_id}")
    if participant.banned != banned:
        participant.banned = banned
        log(session, conversation_id, account_id, "ban" if banned else "unban", pid=pid)
        bump_revision(session, conversation_id)
    return participant


def log(
    session: Session,
    conversation_id: int,
    account_id: int | None,
    action: str,
    *,
    sid: int | None = None,
    pid: int | None = None,
) -> None:
    session.add(
        ModerationRow(
            conversation_id=conversation_id,
            account_id=account_id,
            action=action,
            sid=sid,
            pid=pid,
            created_ms=now_ms(),
        )
    )
