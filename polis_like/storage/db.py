"""Where the data lives: the database URL, engines and sessions.

SQLite is the default: a file in the instance folder (see :mod:`polis_like.settings`) in WAL
mode, so that the web server's readers never wait for the worker's writes. Set
``DATABASE_URL`` (for example ``postgresql://localhost/test``) to use PostgreSQL instead.
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Dialect, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else the settings' (``$DATABASE_URL``, else SQLite in the
    instance folder).

    ``postgresql://`` URLs are given the psycopg 3 driver.
    """
    if not url:
        from polis_like.settings import read_settings

        url = read_settings().resolved_database_url()
    if url.startswith("postgres://"):  # the spelling Heroku and others hand out
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str | None = None, *, sqlite_busy_s: float | None = None, **options) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), creating the SQLite file's folder.

    On SQLite a write waits up to ``sqlite_busy_s`` (default: the setting, 30 s) for another
    writer's lock, then fails with "database is locked", which the web app answers with 503.
    """
    url = database_url(url)
    if is_sqlite(url):
        if sqlite_busy_s is None:
            from polis_like.settings import read_settings

            sqlite_busy_s = read_settings().sqlite_busy_s
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {}).setdefault("timeout", sqlite_busy_s)
        engine = create_engine(url, **options)
        event.listen(
            engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=int(sqlite_busy_s * 1000))
        )
        event.listen(engine, "handle_error", _replace_read_only)
        return engine
    options.setdefault("pool_size", 10)
    engine = create_engine(url, **options)
    event.listen(engine, "handle_error", _replace_read_only)
    if not options.get("pool_pre_ping"):
        event.listen(engine, "checkin", _returned)
        event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


#: A pooled connection idle longer than this is checked (a round trip) before it is used again.
PING_IDLE_S = 1.0


def _returned(_dbapi_connection, record) -> None:
    record.info["returned_at"] = time.monotonic()


def _ping_if_idle(dialect, dbapi_connection, record, _proxy) -> None:
    """Check a connection that sat in the pool a while: the database may have restarted
    meanwhile. One used a moment ago is not checked (a busy server saves a round trip a
    request); if the database went away in that moment, the request gets a 503 and the pool
    replaces the connection."""
    returned = record.info.get("returned_at")
    if returned is not None and time.monotonic() - returned < PING_IDLE_S:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as error:
        raise DisconnectionError(str(error)) from error
    if alive is False:
        raise DisconnectionError("the connection did not answer")


def _replace_read_only(context) -> None:
    """Drop the pool's connections when the database said it is read-only.

    A connection keeps what it was opened with: a SQLite file that was read-only then, or a
    PostgreSQL session that began with ``default_transaction_read_only``. Counted as a lost
    connection, the error makes the pool open new ones, so writes work again as soon as the
    database takes them, without a restart (a SQLite file once no connection of the process
    still has it open: docs/service.md, "Outages").
    """
    if refusal(context.original_exception) == "read-only":
        context.is_disconnect = True
        # SQLAlchemy leaves a lost connection's cursor to the garbage collector; the error's
        # traceback holds it, and with it SQLite's statement, which keeps the closed
        # connection's file (and that view) open.
        cursor = getattr(context.execution_context, "cursor", None)
        if cursor is not None:
            try:
                cursor.close()
            except Exception:
                pass


def _sqlite_pragmas(connection, _record, *, busy_ms: int) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


#: Writers of this process to SQLite files take turns here. SQLite lets one connection write
#: at a time and makes the others sleep and retry (1, 2, 5 ... 100 ms apart): with dozens of
#: threads voting at once most of them sleep while the file is free. A lock hands the turn
#: over at once: this one between the threads of a process, then a lock on the file
#: ``<database>-turn`` between the processes (the web server runs several).
_sqlite_writer = threading.Lock()
_turn_files: dict[tuple[int, str], int] = {}
_turn_files_lock = threading.Lock()


def _turn_file(database: str) -> int | None:
    """This process's descriptor of the database's turn file (None when it cannot be opened,
    e.g. on a full disk: the processes then order themselves by SQLite's busy timeout)."""
    key = (os.getpid(), database)  # a forked process opens its own: the lock is per open file
    with _turn_files_lock:
        return _turn_files[key] if key in _turn_files else _open_turn_file(key, database)


def _open_turn_file(key: tuple[int, str], database: str) -> int | None:
    path = f"{database}-turn"
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
    _turn_files[key] = descriptor
    return descriptor


@contextmanager
def sqlite_turn(session: Session) -> Iterator[None]:
    """Hold the SQLite write turn (of this process's threads, then of the processes) while the
    block writes and commits; nothing on PostgreSQL. The block must be the session's whole write
    transaction: one that had written before would hold the file while it waits for the turn.

    A writer that has to wait for the turn says so first (:func:`turn_waits`), so that a long
    writer (an import) leaves it the file at its next pause."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    database = bind.engine.url.database
    descriptor = _turn_file(database) if database and database != ":memory:" else None
    if not _sqlite_writer.acquire(blocking=False):
        _announce_wait(descriptor)
        _sqlite_writer.acquire()
    try:
        if descriptor is None:
            yield
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _announce_wait(descriptor)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        _sqlite_writer.release()


def _announce_wait(descriptor: int | None) -> None:
    """Touch the turn file: its modification time tells a long writer that someone waits."""
    if descriptor is None:
        return
    try:
        os.pwrite(descriptor, b"\0", 0)
    except OSError:  # opened read-only, or the disk is full: the writer's pauses still come
        pass


def turn_waits(session: Session) -> int | None:
    """A mark that changes whenever a writer of any process had to wait for the SQLite write
    turn of the session's database (None: PostgreSQL, or no turn file)."""
    bind = session.get_bind()
    database = bind.engine.url.database
    if bind.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    descriptor = _turn_file(database)
    return os.fstat(descriptor).st_mtime_ns if descriptor is not None else None


def autocommit(session: Session) -> Session:
    """On PostgreSQL, have each statement of ``session`` commit by itself, which spares the
    BEGIN and COMMIT round trips of a request whose writes are each one statement (a vote).
    Call it before the session's first statement. Nothing on SQLite, where a transaction costs
    no round trip and the write turns (:func:`sqlite_turn`) rely on transactions."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session


def execute_direct(session: Session, statement: Select, params: dict) -> list:
    """The rows of ``statement`` (a Core statement built once, at import) with ``params``,
    as named tuples; on PostgreSQL run by the driver itself.

    The hot path of a vote runs two statements. Through SQLAlchemy each cost about 250 us of
    the web process's CPU besides the driver's 100 (the statement's cache key, the execution
    context, the result's rows), a third of a vote's time in the process. Here the statement is
    compiled once per dialect and handed to psycopg (which prepares it on the server after a
    few uses). What SQLAlchemy's error handling would do is done here: a connection that broke
    or found the database read-only is invalidated, so that the pool opens a new one, and the
    driver's error is raised as SQLAlchemy's (a ``DBAPIError``), as it would have been. On
    SQLite the statement goes through SQLAlchemy as usual.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return list(connection.execute(statement, params))
    from psycopg import Error
    from psycopg.rows import namedtuple_row

    sql, defaults = _compiled(statement, connection.dialect)
    driver = connection.connection.driver_connection
    try:
        with driver.cursor(row_factory=namedtuple_row) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, {**defaults, **params} if defaults else params)
            return cursor.fetchall() if cursor.description else []
    except Error as error:
        lost = connection.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
        if lost or refusal(error) == "read-only":
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, params, error, Error, connection_invalidated=lost, dialect=connection.dialect
        ) from error


_COMPILED: dict[tuple[Select, type], tuple[str, dict]] = {}


def _compiled(statement: Select, dialect: Dialect) -> tuple[str, dict]:
    """``statement``'s SQL for ``dialect``, and the values of the parameters it sets itself
    (once per statement and kind of dialect, whatever the number of engines)."""
    key = (statement, type(dialect))
    if key not in _COMPILED:
        compiled = statement.compile(dialect=dialect)
        _COMPILED[key] = str(compiled), {k: v for k, v in compiled.params.items() if v is not None}
    return _COMPILED[key]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


#: SQLite's result codes (the primary code is the low byte of an extended one).
_SQLITE_REFUSALS = {8: "read-only", 13: "full"}  # SQLITE_READONLY, SQLITE_FULL
#: PostgreSQL's SQLSTATEs: read_only_sql_transaction (a read-only database or a standby) and
#: disk_full.
_POSTGRES_REFUSALS = {"25006": "read-only", "53100": "full"}


def refusal(error: BaseException) -> str | None:
    """``"read-only"`` or ``"full"`` when ``error`` says the database takes no writes now (a
    read-only file or database, a standby, a full disk), else None. Reads still work then."""
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE_REFUSALS.get(code & 0xFF)
    state = getattr(orig, "sqlstate", None)
    return _POSTGRES_REFUSALS.get(state) if isinstance(state, str) else None


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database is unreachable or busy, not that a query is wrong.

    Such errors pass: the caller backs off and tries again (503 on the web, a pause in the
    worker). SQLite's "database is locked" (a writer held the lock past the busy timeout) counts,
    and so does a database that takes no writes for now (:func:`refusal`).
    """
    import sqlite3

    import psycopg
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError

    # The driver's own errors come from the wake-up listeners, which use the driver directly;
    # TimeoutError is the pool's: no connection to be had in time.
    if isinstance(
        error,
        (
            OperationalError,
            InterfaceError,
            TimeoutError,
            sqlite3.OperationalError,
            psycopg.OperationalError,
        ),
    ):
        return True
    if refusal(error) is not None:
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)
