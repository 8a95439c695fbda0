"""Where the data lives: the database URL, engines and sessions.

SQLite is the default: a file under ``var/`` in WAL mode, so that the web server's readers
never wait for the worker's writes. Set ``DATABASE_URL`` (for example
``postgresql://localhost/test``) to use PostgreSQL instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE = "var/polis-like.db"


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$DATABASE_URL``, else SQLite at ``var/polis-like.db``.

    ``postgresql://`` URLs are given the psycopg 3 driver.
    """
    url = url or os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}"
    if url.startswith("postgres://"):  # the spelling Heroku and others hand out
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str | None = None, **options) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), creating the SQLite file's folder."""
    url = database_url(url)
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_size", 10)
    return create_engine(url, **options)


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database is unreachable or busy, not that a query is wrong.

    Such errors pass: the caller backs off and tries again (503 on the web, a pause in the
    worker). SQLite's "database is locked" (a writer held the lock past the busy timeout) counts.
    """
    import sqlite3

    import psycopg
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    # The driver's own errors come from the wake-up listeners, which use the driver directly.
    if isinstance(error, (OperationalError, InterfaceError, sqlite3.OperationalError,
                          psycopg.OperationalError)):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)
