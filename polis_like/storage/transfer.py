"""Import a Pol.is export as a conversation, and export a conversation as one.

An import keeps the export's ids: participant ids become pids and comment ids become sids, so
that exporting the conversation again gives the same files back (before the math has run, the
group-id column is blank). The rows are written in bulk (COPY on PostgreSQL, batched inserts on
SQLite), and a failed import leaves nothing behind (see :func:`import_conversation`).

An import takes the texts as the files give them: our default export puts a ``'`` before a text
that begins like a spreadsheet formula, and that ``'`` is imported with it (visible, never
silently removed); an ``exact`` export moves a conversation unchanged.

What the tables cannot hold as such is encoded:

* summary.csv rows other than topic and conversation-description go into ``Conversation.extra``
  (a JSON object) and are written back on export;
* a statement without a time (a comments.csv row with a blank timestamp, or a comment known only
  from participants-votes.csv) is stored at ``created_ms`` 0 and exported with a blank time;
* votes made up from participants-votes.csv alone (an export without votes.csv) are stored at
  time 0, and a conversation whose votes are all at time 0 exports without vote datetimes and
  with an empty stats history, as such an export reads;
* statements whose text repeats an earlier one's (real exports have a few) keep their text; the
  repeats' ``text_key`` (the duplicate check of new statements) is made unique with their sid.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from polis_like.conversation import Conversation, Moderation, VoteEvents
from polis_like.conversation import Statement as ExportStatement
from polis_like.errors import InputError
from polis_like.math.matrix import latest_index

from .bulk import (
    SQLITE_PACKED_VOTE,
    packs_votes,
    read_all,
    read_chunks,
    sqlite_integers,
    unpack_votes,
)
from .conversations import TOPIC_MAX, clean_text, create_conversation, get_conversation, text_key
from .db import now_ms, sqlite_turn, turn_waits
from .models import MAX_ID, ConversationRow, ParticipantRow, StatementRow
from .notify import notify_change
from .results import latest_groups

if TYPE_CHECKING:
    from polis_like.io.write import ExportSource

DEFAULT_TOPIC = "Imported conversation"
XID_MAX = 200  # ParticipantRow.xid's length
#: Summary rows that live in their own columns rather than in ``extra``.
_OWN_COLUMNS = ("topic", "conversation-description")

Progress = Callable[[int, int], None]


# -- import ---------------------------------------------------------------------------------


def import_export(
    sessions: sessionmaker[Session],
    path: str | os.PathLike[str],
    *,
    topic: str | None = None,
    owner_id: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Read the Pol.is export at ``path`` (a folder or .zip) and import it; returns its id."""
    from polis_like.io import read_export

    return import_conversation(
        sessions, read_export(path), topic=topic, owner_id=owner_id, progress=progress
    )


def import_conversation(
    sessions: sessionmaker[Session],
    conversation: Conversation,
    *,
    topic: str | None = None,
    owner_id: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Store ``conversation`` as a new conversation (open moderation); returns its id.

    An error leaves nothing behind. ``progress(done, total)`` is called as rows are written
    (participants, statements, vote events and latest votes).

    The rows are written in chunks straight from the conversation's arrays (no Python object a
    vote): on PostgreSQL by ``COPY`` (binary for the votes), in transactions of
    :data:`PG_TRANSACTION_ROWS` rows, the vote events and the latest votes on two connections
    at once (:func:`_pg_rows`); on SQLite by batched inserts, in transactions of about
    :data:`SQLITE_TURN_S` each, so that votes of other conversations never wait long for the
    file's write lock. Until the last one commits
    the conversation is marked importing (``importing_ms``) and is invisible and inert; a failed
    import deletes what it wrote, and one that was killed is deleted by the next import
    (:func:`clear_dead_imports`).
    """
    pids = _integer_ids(conversation.participant_ids, "participant")
    sids = _integer_ids([s.id for s in conversation.statements], "comment")
    pid_of = dict(zip(conversation.participant_ids, pids.tolist(), strict=True))
    xids = _checked_xids(conversation, pid_of)
    _check_no_nul(conversation)
    for statement in conversation.statements:
        if statement.author_id is not None and statement.author_id not in pid_of:
            raise InputError(
                f"the author {statement.author_id} of comment {statement.id} is not a participant"
            )
    votes = conversation.votes
    # All at 0 when the export had no times.
    times = votes.timestamp_ms if conversation.has_timestamps else np.zeros(len(votes), np.int64)
    # Events in time order, ties in the order given (vote event ids follow it).
    order = votes.time_order()
    keep = latest_index(VoteEvents(times, votes.participant, votes.statement, votes.vote))

    def vote_columns(index: np.ndarray) -> list[Any]:
        return [
            pids[votes.participant[index]],
            sids[votes.statement[index]],
            votes.vote[index],
            times[index],
        ]

    statement_times = [s.created_ms for s in conversation.statements]
    now = now_ms()
    arrival = _arrivals(conversation, times, now)
    dated = [t for t in statement_times if t is not None and t > 0]
    dated += [int(times.min())] if len(times) and times.min() > 0 else []

    statements: list[tuple] = []
    seen_keys: set[str] = set()
    for statement, sid, created in zip(
        conversation.statements, sids.tolist(), statement_times, strict=True
    ):
        key = text_key(statement.text)
        if key in seen_keys:
            key = _repeat_key(key, sid)
        seen_keys.add(key)
        author = statement.author_id
        statements.append(
            (
                sid,
                statement.text,
                key,
                pid_of[author] if author is not None else None,
                int(statement.moderation),
                False,
                bool(statement.is_meta),
                created if created is not None else 0,
            )
        )

    vote_names = ("pid", "sid", "vote", "created_ms")
    vote_types = ("int4", "int4", "int2", "int8")
    tables = [
        _Table(
            "participants",
            ("pid", "xid", "banned", "created_ms"),
            len(pids),
            lambda a, b: [
                pids[a:b],
                [xids.get(p) for p in pids[a:b].tolist()],
                [False] * (b - a),
                arrival[a:b],
            ],
        ),
        _Table(
            "statements",
            ("sid", "text", "text_key", "author_pid", "status", "is_seed", "is_meta", "created_ms"),
            len(statements),
            lambda a, b: [list(column) for column in zip(*statements[a:b], strict=True)],
        ),
        _Table(
            "vote_events",
            vote_names,
            len(order),
            lambda a, b: vote_columns(order[a:b]),
            vote_types,
        ),
        _Table(
            "latest_votes", vote_names, len(keep), lambda a, b: vote_columns(keep[a:b]), vote_types
        ),
    ]
    total = sum(table.size for table in tables)
    done = 0
    reporting = threading.Lock()  # PostgreSQL writes the votes from two threads

    def report(rows: int) -> None:
        nonlocal done
        with reporting:
            done += rows
            if progress is not None:
                progress(done, total)

    settings = {
        "topic": _topic(topic, conversation.summary),
        "moderation": "open",
        "description": conversation.summary.get("conversation-description", ""),
    }
    extra = {k: v for k, v in conversation.summary.items() if k not in _OWN_COLUMNS}

    def create(session: Session, importing_ms: int | None) -> int:
        row = create_conversation(
            session, settings, owner_id=owner_id, created_ms=min(dated, default=now), extra=extra
        )
        row.next_pid = int(pids.max()) + 1 if len(pids) else 0
        row.next_sid = int(sids.max()) + 1 if len(sids) else 0
        row.revision = 0
        row.importing_ms = importing_ms
        session.flush()
        return row.id

    if progress is not None:
        progress(0, total)
    with sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        return _import_postgres(sessions, create, tables, report)
    return _import_sqlite(sessions, create, tables, report)


@dataclass
class _Table:
    """The rows of one table: ``rows(start, stop)`` gives the values of ``columns`` (all but
    conversation_id) of rows start to stop - 1, a numpy array or list a column."""

    name: str
    columns: tuple[str, ...]
    size: int
    rows: Callable[[int, int], list[Any]]
    #: The columns' PostgreSQL types when all are fixed-width integers (binary COPY), or None.
    binary: tuple[str, ...] | None = None


def _chunk(table: _Table, start: int, stop: int) -> list[Any]:
    """One chunk of ``table``'s rows, as columns (what every write of an import goes through)."""
    return table.rows(start, stop)


# PostgreSQL: COPY in transactions of a bounded size, the votes on two connections at once.

#: Rows a COPY write (and a progress step) on PostgreSQL.
CHUNK = 100_000
#: Rows a transaction of a PostgreSQL import. Each commits by itself, so that no transaction
#: of the import runs long: the worker reads only the votes of transactions older than every
#: running one (:func:`polis_like.storage.votes.read_new_votes`), so one long import
#: transaction would hold back every conversation's results.
PG_TRANSACTION_ROWS = 250_000
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_PGCOPY_TRAILER = b"\xff\xff"
_PG_INTEGERS = {"int2": ">i2", "int4": ">i4", "int8": ">i8"}
#: Turns this session's foreign-key checks off for the transaction (see :func:`_pg_rows`).
_SKIP_FK_CHECKS = text("SET LOCAL session_replication_role = replica")
#: An import's heartbeat: each of its transactions writes when it was alive (``cid``, ``now``).
_HEARTBEAT = (
    update(ConversationRow)
    .where(ConversationRow.id == bindparam("cid"))
    .values(importing_ms=bindparam("now"))
)


def _imported(session: Session, cid: int) -> None:
    """End the import of ``cid``: the conversation becomes visible, and the workers hear of it."""
    session.execute(
        update(ConversationRow).where(ConversationRow.id == cid).values(importing_ms=None)
    )
    notify_change(session, cid)


def _import_postgres(
    sessions: sessionmaker[Session],
    create: Callable[[Session, int | None], int],
    tables: list[_Table],
    report: Callable[[int], None],
) -> int:
    clear_dead_imports(sessions)
    with sessions.begin() as session:
        cid = create(session, now_ms())
    try:
        skip_fk = _may_skip_fk_checks(sessions)
        stop = threading.Event()
        first, *rest = [t for t in tables if t.binary is not None]  # the votes
        for table in tables:
            if table.binary is None:
                _pg_rows(sessions, cid, table, report, skip_fk, stop, heartbeat=True)
        # The vote events here and the latest votes on another connection, at once: the
        # server's work a row (indexes, sequence) is the cost, and it has more than one core.
        errors: list[BaseException] = []

        def write_beside(table: _Table) -> None:
            try:
                _pg_rows(sessions, cid, table, report, skip_fk, stop, heartbeat=False)
            except _Stopped:
                pass
            except BaseException as error:  # raised by the importing thread, below
                errors.append(error)
                stop.set()

        helpers = [
            threading.Thread(target=write_beside, args=(table,), name=f"import-{table.name}")
            for table in rest
        ]
        for helper in helpers:
            helper.start()
        try:
            _pg_rows(sessions, cid, first, report, skip_fk, stop, heartbeat=True)
        except _Stopped:
            pass  # a helper failed: its error is raised below
        except BaseException:
            stop.set()
            raise
        finally:
            for helper in helpers:
                helper.join()
        if errors:
            raise errors[0]
        with sessions.begin() as session:
            _imported(session, cid)
    except BaseException:
        _discard(sessions, cid)  # if this fails too, the next import deletes the rest
        raise
    return cid


def _pg_rows(
    sessions: sessionmaker[Session],
    cid: int,
    table: _Table,
    report: Callable[[int], None],
    skip_fk: bool,
    stop: threading.Event,
    *,
    heartbeat: bool,
) -> None:
    """COPY the table's rows, :data:`PG_TRANSACTION_ROWS` a transaction.

    Each transaction first locks the conversation's row against deletion (the heartbeat, an
    ``UPDATE`` of ``importing_ms``, or a key-share lock, as the foreign-key check would) and
    fails if it is gone: a concurrent :func:`clear_dead_imports` took the import for dead.
    With that lock held, the per-row foreign-key checks (the bulk of the server's work a vote)
    can only pass, and are turned off for the transaction where the role may
    (``session_replication_role``; the schema and every other session keep them). That mode
    skips every ordinary trigger of the transaction, not only the foreign keys': the schema has
    no other, and one added later would not fire for imported rows.
    """
    lock = (
        _HEARTBEAT.returning(ConversationRow.id)
        if heartbeat
        else select(ConversationRow.id)
        .where(ConversationRow.id == bindparam("cid"))
        .with_for_update(read=True, key_share=True)
    )
    for start in range(0, table.size, PG_TRANSACTION_ROWS):
        if stop.is_set():
            raise _Stopped
        stop_row = min(start + PG_TRANSACTION_ROWS, table.size)
        with sessions.begin() as session:
            if session.execute(lock, {"cid": cid, "now": now_ms()}).first() is None:
                raise RuntimeError(f"conversation {cid} was deleted while it was being imported")
            if skip_fk:
                session.execute(_SKIP_FK_CHECKS)
            driver = session.connection().connection.driver_connection
            assert driver is not None  # an open connection has its driver's
            with driver.cursor() as cursor:
                _copy(cursor, cid, table, start, stop_row, report)
        if heartbeat:
            _between_chunks(cid)


class _Stopped(Exception):
    """Another writer of the same import failed (it raises the error)."""


def _may_skip_fk_checks(sessions: sessionmaker[Session]) -> bool:
    """Whether this role may turn off its session's foreign-key checks (a superuser, or one
    granted ``SET`` on ``session_replication_role``)."""
    from sqlalchemy.exc import ProgrammingError

    with sessions() as session:
        try:
            session.execute(_SKIP_FK_CHECKS)
        except ProgrammingError:  # insufficient_privilege
            return False
        finally:
            session.rollback()
    return True


def _copy(
    cursor: Any, cid: int, table: _Table, first: int, end: int, report: Callable[[int], None]
) -> None:
    """COPY the table's rows ``first`` to ``end - 1`` in chunks: integers in the binary format,
    built by numpy."""
    names = ", ".join(("conversation_id", *table.columns))
    if table.binary is None:
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for start in range(first, end, CHUNK):
                stop = min(start + CHUNK, end)
                columns = [
                    c.tolist() if isinstance(c, np.ndarray) else c
                    for c in _chunk(table, start, stop)
                ]
                for row in zip(itertools.repeat(cid), *columns, strict=False):
                    copy.write_row(row)
                report(stop - start)
        return
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_PGCOPY_HEADER)
        for start in range(first, end, CHUNK):
            stop = min(start + CHUNK, end)
            copy.write(_binary_rows(cid, table.binary, _chunk(table, start, stop)))
            report(stop - start)
        copy.write(_PGCOPY_TRAILER)


def _binary_rows(cid: int, types: tuple[str, ...], columns: list[Any]) -> bytes:
    """Rows of COPY's binary format: a field count, then each field's length and value."""
    kinds = ("int4", *types)
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"length{i}", ">i4"), (f"value{i}", _PG_INTEGERS[kind])]
    rows = np.empty(len(columns[0]), dtype=np.dtype(fields))
    rows["count"] = len(kinds)
    for i, (kind, values) in enumerate(zip(kinds, [cid, *columns], strict=True)):
        rows[f"length{i}"] = np.dtype(_PG_INTEGERS[kind]).itemsize
        rows[f"value{i}"] = values
    return rows.tobytes()


# SQLite: short transactions, taking turns with the votes.

#: On SQLite an import writes in transactions of about this long (each in the write turn,
#: :func:`~.db.sqlite_turn`, which other writers of any process wait on), then leaves the file
#: to other writers (:class:`_Pauses`): a vote waits at most about one transaction.
SQLITE_TURN_S = 0.4
#: The pause after a transaction when nobody waited for the turn nor wrote meanwhile.
SQLITE_SHORT_PAUSE_S = 0.01
#: The pause after a transaction when a writer waited for the turn during it, or another
#: connection wrote during the previous pause, and at least every
#: :data:`SQLITE_PAUSE_EVERY_S`: writers that do not take the turn
#: (a new participant, a statement, the worker) wait in SQLite's busy handler, which retries
#: at most 100 ms apart, so a pause this long lets them in.
SQLITE_PAUSE_S = 0.1
SQLITE_PAUSE_EVERY_S = 1.0
#: The rows of the first transaction; the next ones are sized by the time it took.
SQLITE_FIRST_ROWS = 5_000
SQLITE_MAX_ROWS = 1_000_000
#: An import that has not written for this long is dead (killed, its machine down): the next
#: import deletes what it wrote. A live import writes every second or so, or waits for the
#: lock at most the busy timeout (30 s by default).
DEAD_IMPORT_S = 300.0
#: Rows a transaction of the deletion of a failed import.
DISCARD_ROWS = 50_000


def _between_chunks(conversation_id: int) -> None:
    """Called after each transaction of an import that writes its heartbeat (a hook for the
    tests); on PostgreSQL the latest votes are being written meanwhile."""


def _import_sqlite(
    sessions: sessionmaker[Session],
    create: Callable[[Session, int | None], int],
    tables: list[_Table],
    report: Callable[[int], None],
) -> int:
    clear_dead_imports(sessions)
    with sessions() as session:
        with sqlite_turn(session):
            cid = create(session, now_ms())
            session.commit()
        try:
            rows = SQLITE_FIRST_ROWS
            pause = _Pauses(session)
            for table in tables:
                start = 0
                while start < table.size:
                    stop = min(start + rows, table.size)
                    began = time.perf_counter()
                    with sqlite_turn(session):
                        _insert_rows(session, cid, table, _chunk(table, start, stop))
                        session.execute(_HEARTBEAT, {"cid": cid, "now": now_ms()})
                        session.commit()
                    spent = time.perf_counter() - began
                    rows = int((stop - start) * SQLITE_TURN_S / max(spent, 1e-3))
                    rows = max(SQLITE_FIRST_ROWS, min(rows, SQLITE_MAX_ROWS))
                    report(stop - start)
                    start = stop
                    _between_chunks(cid)
                    pause()
            with sqlite_turn(session):
                _imported(session, cid)
                session.commit()
        except BaseException:
            session.rollback()
            _discard(sessions, cid)  # if this fails too, the next import deletes the rest
            raise
    return cid


class _Pauses:
    """The pause after each transaction of a SQLite import: :data:`SQLITE_PAUSE_S` when a
    writer had to wait for the turn meanwhile (:func:`~.db.turn_waits`), or another connection
    wrote during the previous pause (``PRAGMA data_version`` tells: there is write traffic),
    and at least every :data:`SQLITE_PAUSE_EVERY_S`; else :data:`SQLITE_SHORT_PAUSE_S`."""

    def __init__(self, session: Session, sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.sleep = sleep
        self.others_wrote = False
        self.waits = turn_waits(session)
        self.last_long = time.perf_counter()

    def _version(self) -> int:
        return int(self.session.connection().exec_driver_sql("PRAGMA data_version").scalar_one())

    def __call__(self) -> None:
        waits = turn_waits(self.session)
        someone_waited, self.waits = waits != self.waits, waits
        long = (
            someone_waited
            or self.others_wrote
            or time.perf_counter() - self.last_long >= SQLITE_PAUSE_EVERY_S
        )
        before = self._version()
        self.sleep(SQLITE_PAUSE_S if long else SQLITE_SHORT_PAUSE_S)
        self.others_wrote = self._version() != before
        if long:
            self.last_long = time.perf_counter()


def _insert_rows(session: Session, cid: int, table: _Table, columns: list[Any]) -> None:
    """One executemany of the driver's (no SQLAlchemy or ORM work a row), whose errors
    SQLAlchemy still wraps (a full disk or a read-only file is an outage: db.refusal)."""
    names = ", ".join(("conversation_id", *table.columns))
    marks = ", ".join("?" * (len(table.columns) + 1))
    values = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns]
    session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
        list(zip(itertools.repeat(cid), *values, strict=False)),
    )


def clear_dead_imports(sessions: sessionmaker[Session]) -> list[int]:
    """Delete the conversations whose import died (see :data:`DEAD_IMPORT_S`); their ids."""
    with sessions() as session:
        dead = session.scalars(
            select(ConversationRow.id).where(
                ConversationRow.importing_ms < now_ms() - int(DEAD_IMPORT_S * 1000)
            )
        ).all()
    for cid in dead:
        _discard(sessions, cid)
    return list(dead)


def _discard(sessions: sessionmaker[Session], cid: int) -> None:
    """Delete what an import of ``cid`` wrote, in short transactions."""
    with sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        # A row's physical address: no table here has one column that names its rows.
        address = "ctid" if postgres else "rowid"
        for table in ("vote_events", "latest_votes", "participants", "statements"):
            deleted = DISCARD_ROWS
            delete_some = text(
                f"DELETE FROM {table} WHERE {address} IN (SELECT {address} FROM {table}"
                " WHERE conversation_id = :cid LIMIT :n)"
            )
            while deleted:
                with sqlite_turn(session):
                    result = session.execute(delete_some, {"cid": cid, "n": DISCARD_ROWS})
                    deleted = int(getattr(result, "rowcount", 0) or 0)
                    session.commit()
                if deleted and not postgres:
                    time.sleep(SQLITE_PAUSE_S)
        with sqlite_turn(session):
            session.execute(delete(ConversationRow).where(ConversationRow.id == cid))
            session.commit()


def _integer_ids(ids: Sequence[str], kind: str) -> np.ndarray:
    """The export's ids as integers (the readers guarantee non-negative integers).

    The range is checked on Python integers, before they become int64: an id past 2^63 would
    overflow the array instead of being refused.
    """
    high = MAX_ID - 1  # the next pid or sid after it must be an id too
    try:
        numbers = [int(i) for i in ids]
    except ValueError:  # not an integer, or thousands of digits
        bad = next((i for i in ids if not (i.isascii() and i.isdigit())), None)
        if bad is not None:
            raise InputError(f"{kind} id {bad!r} is not a non-negative integer") from None
        numbers = [high + 1]
    if numbers and (min(numbers) < 0 or max(numbers) > high):
        raise InputError(f"{kind} ids must be between 0 and {high}")
    values = np.array(numbers, dtype=np.int64)
    if len(np.unique(values)) != len(values):
        raise InputError(f"{kind} ids repeat")
    return values


def _checked_xids(conversation: Conversation, pid_of: dict[str, int]) -> dict[int, str]:
    """pid -> xid; an xid may name one participant only and fit its column."""
    xids: dict[int, str] = {}
    owner: dict[str, str] = {}
    for participant, xid in conversation.xids.items():
        if not xid:
            continue
        if len(xid) > XID_MAX:
            raise InputError(
                f"the xid of participant {participant} is {len(xid)} characters "
                f"long; the limit is {XID_MAX}"
            )
        if xid in owner:
            raise InputError(
                f"participants {owner[xid]} and {participant} have the same xid {xid!r}"
            )
        owner[xid] = participant
        if participant in pid_of:
            xids[pid_of[participant]] = xid
    return xids


def _check_no_nul(conversation: Conversation) -> None:
    """PostgreSQL text cannot hold NUL characters; refuse them on every database alike."""
    for statement in conversation.statements:
        if "\x00" in statement.text:
            raise InputError(f"comment {statement.id} contains a NUL character")
    for key in _OWN_COLUMNS:
        if "\x00" in conversation.summary.get(key, ""):
            raise InputError(f"the summary's {key} contains a NUL character")
    for participant, xid in conversation.xids.items():
        if "\x00" in xid:
            raise InputError(f"the xid of participant {participant} contains a NUL character")


def _topic(topic: str | None, summary: dict[str, str]) -> str:
    if topic is not None:
        return clean_text(topic, what="topic", limit=TOPIC_MAX)
    given = summary.get("topic", "")
    return given[:TOPIC_MAX] if given.strip() else DEFAULT_TOPIC


def _repeat_key(key: str, sid: int) -> str:
    """A text key for a repeated text: unique by sid, never equal to a SHA-256 key (":")."""
    suffix = f":{sid}"
    return key[: 64 - len(suffix)] + suffix


def _arrivals(conversation: Conversation, times: np.ndarray, now: int) -> np.ndarray:
    """Each participant's first vote or comment time (``now``: neither is known)."""
    big = np.iinfo(np.int64).max
    first = np.full(len(conversation.participant_ids), big, dtype=np.int64)
    np.minimum.at(first, conversation.votes.participant, times)
    index = {pid: i for i, pid in enumerate(conversation.participant_ids)}
    for statement in conversation.statements:
        if statement.author_id is not None and statement.created_ms is not None:
            i = index[statement.author_id]
            first[i] = min(first[i], statement.created_ms)
    first[first == big] = now
    return first


# -- export ---------------------------------------------------------------------------------


def export_conversation(
    session: Session, conversation_id: int
) -> tuple[Conversation, dict[str, int | None]]:
    """The conversation as a Pol.is export would describe it, and each participant's group.

    Groups come from the latest math result (None: not clustered), or are all None before the
    first result; with a result, summary.csv's voters-in-conv is the result's too.
    Raises :class:`~polis_like.storage.conversations.NotFound` for an unknown conversation.
    """
    parts = _export_parts(session, conversation_id)
    table = read_all(session, _EVENTS_BY_ID, (conversation_id,), _EXPORT_EVENT)
    votes = parts.events(table)
    conversation = Conversation(
        summary=parts.summary,
        statements=parts.statements,
        participant_ids=parts.participant_ids,
        xids=parts.xids,
        votes=votes,
        has_timestamps=not (len(table) and int(table["created_ms"].max()) == 0),
    )
    return conversation, parts.groups


def export_source(
    session: Session, conversation_id: int
) -> tuple[ExportSource, dict[str, int | None]]:
    """:func:`export_conversation` with the votes read in chunks as they are written
    (:class:`polis_like.io.write.ExportSource`), so that memory stays flat in their number."""
    parts = _export_parts(session, conversation_id)
    from polis_like.io.write import NO_VOTE, ExportSource

    first = np.full(len(parts.pids), NO_VOTE, dtype=np.int64)
    last_ms = [int(NO_VOTE)]  # the time of the last vote (NO_VOTE: none)
    for chunk in read_chunks(session, _FIRST_VOTES, (conversation_id,), _FIRST_VOTE):
        first[np.searchsorted(parts.pids, chunk["pid"])] = chunk["first_ms"]
        last_ms.append(int(chunk["last_ms"].max()))

    packed = session.get_bind().dialect.name == "sqlite" and packs_votes(parts.pids, parts.sids)

    def events() -> Iterator[VoteEvents]:
        if packed:
            for values in sqlite_integers(session, _EVENTS_BY_TIME_PACKED, (conversation_id,), 2):
                pid, sid, vote = unpack_votes(values[:, 1])
                yield parts.indexed(values[:, 0], pid, sid, vote)
            return
        for chunk in read_chunks(session, _EVENTS_BY_TIME, (conversation_id,), _EXPORT_EVENT):
            yield parts.events(chunk)

    def latest() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # pids are canonical participant ids, in order: the rows of participants-votes.csv
        if packed:
            for values in sqlite_integers(session, _LATEST_BY_PID_PACKED, (conversation_id,), 1):
                pid, sid, vote = unpack_votes(values[:, 0])
                yield np.searchsorted(parts.pids, pid), np.searchsorted(parts.sids, sid), vote
            return
        for chunk in read_chunks(session, _LATEST_BY_PID, (conversation_id,), _LATEST_VOTE):
            yield (
                np.searchsorted(parts.pids, chunk["pid"]),
                np.searchsorted(parts.sids, chunk["sid"]),
                chunk["vote"],
            )

    source = ExportSource(
        summary=parts.summary,
        statements=parts.statements,
        participant_ids=parts.participant_ids,
        xids=parts.xids,
        # votes all at time 0 were made up from participants-votes.csv (see the module's doc)
        has_timestamps=max(last_ms[1:], default=None) != 0,
        first_vote_ms=first,
        events=events(),
        latest=latest(),
    )
    return source, parts.groups


_EXPORT_EVENT = np.dtype(
    [("created_ms", np.int64), ("pid", np.int32), ("sid", np.int32), ("vote", np.int16)]
)
_EVENTS_BY_ID = (
    "SELECT created_ms, pid, sid, vote FROM vote_events WHERE conversation_id = {} ORDER BY id"
)
_EVENTS_BY_TIME = (
    "SELECT created_ms, pid, sid, vote FROM vote_events WHERE conversation_id = {} "
    "ORDER BY created_ms, id"
)
# SQLite: each vote's pid, sid and value in one integer (see .bulk.SQLITE_PACKED_VOTE)
_EVENTS_BY_TIME_PACKED = (
    f"SELECT created_ms, {SQLITE_PACKED_VOTE} FROM vote_events WHERE conversation_id = ? "
    "ORDER BY created_ms, id"
)
_FIRST_VOTE = np.dtype([("pid", np.int32), ("first_ms", np.int64), ("last_ms", np.int64)])
_FIRST_VOTES = (
    "SELECT pid, min(created_ms), max(created_ms) FROM vote_events "
    "WHERE conversation_id = {} GROUP BY pid"
)
_LATEST_VOTE = np.dtype([("pid", np.int32), ("sid", np.int32), ("vote", np.int16)])
_LATEST_BY_PID = (
    "SELECT pid, sid, vote FROM latest_votes WHERE conversation_id = {} ORDER BY pid, sid"
)

_LATEST_BY_PID_PACKED = (
    f"SELECT {SQLITE_PACKED_VOTE} FROM latest_votes WHERE conversation_id = ? ORDER BY pid, sid"
)


@dataclass(frozen=True)
class _ExportParts:
    """What an export holds but the votes."""

    pids: np.ndarray
    sids: np.ndarray
    summary: dict[str, str]
    statements: list[ExportStatement]
    participant_ids: list[str]
    xids: dict[str, str]
    groups: dict[str, int | None]

    def events(self, table: np.ndarray) -> VoteEvents:
        """Vote event records (:data:`_EXPORT_EVENT`) with pids and sids as indices."""
        return self.indexed(table["created_ms"], table["pid"], table["sid"], table["vote"])

    def indexed(
        self, created_ms: np.ndarray, pid: np.ndarray, sid: np.ndarray, vote: np.ndarray
    ) -> VoteEvents:
        """Vote events with pids and sids as indices."""
        return VoteEvents(
            created_ms, np.searchsorted(self.pids, pid), np.searchsorted(self.sids, sid), vote
        )


def _export_parts(session: Session, conversation_id: int) -> _ExportParts:
    row = get_conversation(session, conversation_id)
    participants = session.execute(
        select(ParticipantRow.pid, ParticipantRow.xid)
        .where(ParticipantRow.conversation_id == conversation_id)
        .order_by(ParticipantRow.pid)
    ).all()
    statements = session.execute(
        select(
            StatementRow.sid,
            StatementRow.text,
            StatementRow.author_pid,
            StatementRow.created_ms,
            StatementRow.status,
            StatementRow.is_meta,
        )
        .where(StatementRow.conversation_id == conversation_id)
        .order_by(StatementRow.sid)
    ).all()
    pids = np.array([p.pid for p in participants], dtype=np.int64)
    sids = np.array([s.sid for s in statements], dtype=np.int64)

    summary = {"topic": row.topic}
    summary.update(
        (k, v) for k, v in json.loads(row.extra or "{}").items() if k not in _OWN_COLUMNS
    )
    summary["conversation-description"] = row.description
    participant_ids = [str(p) for p in pids.tolist()]
    groups: dict[str, int | None] = dict.fromkeys(participant_ids)
    latest = latest_groups(session, conversation_id)
    if latest is not None:
        positions, n_in_conversation = latest
        group = positions.group
        for pid, key in zip(pids.tolist(), participant_ids, strict=True):
            if pid < len(group) and group[pid] >= 0:
                groups[key] = int(group[pid])
        summary["voters-in-conv"] = str(n_in_conversation)
    return _ExportParts(
        pids=pids,
        sids=sids,
        summary=summary,
        statements=[
            ExportStatement(
                id=str(s.sid),
                text=s.text,
                author_id=str(s.author_pid) if s.author_pid is not None else None,
                created_ms=s.created_ms or None,
                moderation=Moderation(s.status),
                is_meta=bool(s.is_meta),
            )
            for s in statements
        ],
        participant_ids=participant_ids,
        xids={str(p.pid): p.xid for p in participants if p.xid},
        groups=groups,
    )


def write_conversation(
    session: Session, conversation_id: int, folder: str | os.PathLike[str], *, exact: bool = False
) -> None:
    """Write the conversation as the five Pol.is CSV files into ``folder``, the votes a chunk
    at a time as they are read (:func:`export_source`).

    Texts that begin like a spreadsheet formula get a leading ``'`` unless ``exact``
    (:func:`polis_like.io.write_export`).
    """
    from polis_like.io.write import write_source

    source, groups = export_source(session, conversation_id)
    write_source(source, folder, groups=groups, exact=exact)
