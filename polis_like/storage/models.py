"""The tables of polis-like (SQLAlchemy 2 declarative models).

Every participant and statement of a conversation has a small integer id (``pid`` and ``sid``)
that is dense from 0 within its conversation, as in Pol.is: they are the rows and columns of the
vote matrix the math works on, and the ids of the CSV export. ``vote_events`` is append-only; its
``id`` orders every vote ever cast and is the math worker's high-water mark.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite makes only an INTEGER PRIMARY KEY its rowid (and auto-increments it).
BigId = BigInteger().with_variant(Integer, "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODERATION_MODES = ("strict", "open")
XID_MODES = ("off", "optional", "required")
ROLES = ("admin", "moderator")

#: The largest id of a conversation, participant or statement: the columns are 32-bit signed
#: integers on PostgreSQL, and an id past it could never name a row.
MAX_ID = 2**31 - 1

# Statement status, as in the Pol.is export's "moderated" column.
PENDING, ACCEPTED, REJECTED = 0, 1, -1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AccountRow(Base):
    """An administrator or moderator. Participants have no account."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    #: Carried by the account's session cookies; raising it (sign-out, a new password) ends
    #: every session cookie issued before, wherever it was copied to.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: A disabled account signs nobody in, by password, cookie or token, until enabled again.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (CheckConstraint("role IN ('admin', 'moderator')", name="role"),)


class TokenRow(Base):
    """A bearer token of an account; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class ConversationRow(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    moderation: Mapped[str] = mapped_column(String(8), default="open")
    write_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    map_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    xid_mode: Mapped[str] = mapped_column(String(8), default="off")
    #: When set, a new participant must bring this code (``?invite=`` on the link) to join.
    invite_code: Mapped[str | None] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    #: The next pid and sid to hand out.
    next_pid: Mapped[int] = mapped_column(Integer, default=0)
    next_sid: Mapped[int] = mapped_column(Integer, default=0)
    #: Bumped by everything but votes that changes the math's input (moderation, bans, new
    #: statements): the worker re-reads statements and bans when it moves.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    #: summary.csv rows of an imported export that we keep but do not use (JSON object).
    extra: Mapped[str] = mapped_column(Text, default="{}")
    #: Set while an import writes the conversation in many transactions: the time of
    #: its latest write. Such a conversation is invisible and inert (:data:`VISIBLE`) until the
    #: import clears it; one whose import died is deleted by the next import
    #: (:func:`polis_like.storage.transfer.clear_dead_imports`).
    importing_ms: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint("moderation IN ('strict', 'open')", name="moderation"),
        CheckConstraint("xid_mode IN ('off', 'optional', 'required')", name="xid_mode"),
    )


#: The conversations that exist for everyone but their import (see ``importing_ms``).
VISIBLE = ConversationRow.importing_ms.is_(None)


class ConversationModeratorRow(Base):
    """A moderator given a conversation: moderators see and act on only these (and the ones
    they created); admins on every conversation."""

    __tablename__ = "conversation_moderators"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ParticipantRow(Base):
    __tablename__ = "participants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    pid: Mapped[int] = mapped_column(Integer)
    #: The random id in the participant's signed cookie (None for imported participants).
    visitor: Mapped[str | None] = mapped_column(String(64))
    xid: Mapped[str | None] = mapped_column(String(200))
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A keyed hash of the network address the participant joined from (never the address):
    #: a new participant from the address of a banned one starts banned.
    origin: Mapped[str | None] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_participants_conversation_banned", "conversation_id", "banned"),
        UniqueConstraint("conversation_id", "pid"),
        UniqueConstraint("conversation_id", "visitor"),
        UniqueConstraint("conversation_id", "xid"),
    )


class StatementRow(Base):
    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sid: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the text with case and white space folded: the duplicate check.
    text_key: Mapped[str] = mapped_column(String(64))
    author_pid: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(SmallInteger, default=PENDING)
    is_seed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_meta: Mapped[bool] = mapped_column(Boolean, default=False)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("conversation_id", "sid"),
        UniqueConstraint("conversation_id", "text_key"),
        Index("ix_statements_conversation_status", "conversation_id", "status", "sid"),
        CheckConstraint("status IN (-1, 0, 1)", name="status"),
    )


class VoteEventRow(Base):
    """Every vote ever cast, in order; never updated or deleted.

    On PostgreSQL the table also has ``tx``, the id of the transaction that inserted the event
    (``pg_current_xact_id()``, a server default, so it is not declared here; migration 0005),
    indexed with the conversation: see :func:`polis_like.storage.votes.read_new_votes`.
    """

    __tablename__ = "vote_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    pid: Mapped[int] = mapped_column(Integer)
    sid: Mapped[int] = mapped_column(Integer)
    vote: Mapped[int] = mapped_column(SmallInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_vote_events_conversation_id_id", "conversation_id", "id"),
        CheckConstraint("vote IN (-1, 0, 1)", name="vote"),
    )


class LatestVoteRow(Base):
    """Each participant's current vote on each statement they voted on."""

    __tablename__ = "latest_votes"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    pid: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[int] = mapped_column(Integer, primary_key=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class ModerationRow(Base):
    """Who moderated what, when: statement decisions, bans, settings."""

    __tablename__ = "moderation_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    sid: Mapped[int | None] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class ResultRow(Base):
    """One published math result of a conversation. ``tick`` grows by one per result."""

    __tablename__ = "math_results"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tick: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The last vote event (id) the result includes.
    high_water: Mapped[int] = mapped_column(BigInteger)
    computed_ms: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    #: The JSON document served by the results endpoint.
    result: Mapped[str] = mapped_column(Text)
    #: Per-participant position and group, fixed-width columns (``results.positions_blob``):
    #: "where do I stand" reads one participant's ten bytes of it.
    positions: Mapped[bytes] = mapped_column(LargeBinary)
    #: Shown in a report (``/c/<id>/report/<tick>``): kept for good, past ``KEEP_RESULTS``.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ParticipationRow(Base):
    """The participation counts of one published result: the dashboard's series over time."""

    __tablename__ = "participation_history"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tick: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_ms: Mapped[int] = mapped_column(BigInteger)
    participants: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer)
    statements: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class StateRow(Base):
    """The worker's saved math state of a conversation, to resume from after a restart."""

    __tablename__ = "math_states"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tick: Mapped[int] = mapped_column(Integer)
    high_water: Mapped[int] = mapped_column(BigInteger)
    #: On PostgreSQL: every vote event of a transaction older than this is in the state.
    read_tx: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    saved_ms: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
    """A conversation's place in the worker pool: its lease, latest tick and last failure."""

    __tablename__ = "math_jobs"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    tick: Mapped[int] = mapped_column(Integer, default=0)
    #: The last vote event and conversation revision the latest result includes.
    high_water: Mapped[int] = mapped_column(BigInteger, default=0)
    #: On PostgreSQL: every vote event of a transaction older than this is in the latest
    #: result (vote ids can commit out of order there; transaction ids bound what is final).
    read_tx: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    revision: Mapped[int] = mapped_column(Integer, default=-1)
    error: Mapped[str | None] = mapped_column(Text)
    error_ms: Mapped[int | None] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: When (wall-clock seconds) the lease holder started computing this conversation; None
    #: when it is not computing it. A holder long busy with one conversation lets another
    #: worker take its other conversations (``jobs.acquire``).
    computing_since: Mapped[float | None] = mapped_column(Float)
