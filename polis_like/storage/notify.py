"""Cheap wake-ups between processes: PostgreSQL LISTEN/NOTIFY, SQLite's data_version.

Writers call :func:`notify_change` (votes, statements, moderation) or :func:`notify_result`
(a new math result) inside their transaction; PostgreSQL delivers the notice at commit. A
:class:`Waiter` blocks until a notice arrives on PostgreSQL, or until ``PRAGMA data_version``
moves on SQLite (it moves whenever another connection commits to the file), then the caller
reads what changed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import ColumnElement, Engine, String, cast, func, text
from sqlalchemy.orm import Session

from .db import is_sqlite

CHANGES = "polis_like_changes"
RESULTS = "polis_like_results"
SQLITE_POLL_S = 0.02

log = logging.getLogger("polis_like.storage")


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def _notify(session: Session, channel: str, conversation_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"channel": channel, "payload": str(conversation_id)})


def wake_up_workers(conversation_id: Any) -> ColumnElement:
    """PostgreSQL's ``pg_notify`` call of :func:`notify_change`, as an expression (for a
    statement that does more, like a vote's); ``conversation_id`` may be a bound parameter."""
    return func.pg_notify(CHANGES, cast(conversation_id, String))


#: A web process wakes the workers about one conversation's votes at most this often.
WAKE_EVERY_S = 0.5


class WakeUps:
    """Which votes wake the workers: the first in ``every_s`` seconds of each conversation, in
    this process. The others need not: a worker computes a conversation at most once per
    interval anyway (``POLIS_LIKE_WORKER_INTERVAL_S``) and checks for changes every poll
    (``POLIS_LIKE_WORKER_POLL_S``), so a vote that does not wake it waits at most that long;
    and each notice costs every listening worker a wake-up, and PostgreSQL a lock at commit.
    """

    def __init__(self, every_s: float = WAKE_EVERY_S):
        self.every_s = every_s
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, conversation_id: int) -> bool:
        """Whether a change to the conversation now should wake the workers (and if so, it is
        counted as sent)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(conversation_id, -self.every_s) < self.every_s:
                return False
            self._last[conversation_id] = now
            if len(self._last) > 10_000:  # forget the oldest, never grow without end
                self._last.pop(next(iter(self._last)))
            return True


#: This process's :class:`WakeUps` of votes.
vote_wake_ups = WakeUps()


def notify_change(session: Session, conversation_id: int) -> None:
    """Wake the math workers: the conversation's input changed."""
    _notify(session, CHANGES, conversation_id)


def notify_result(session: Session, conversation_id: int) -> None:
    """Wake the web processes' event streams: a new result was published."""
    _notify(session, RESULTS, conversation_id)


class Waiter:
    """Blocks until another process may have written something of interest.

    It outlives its connection: when the database goes away (a restart, an outage, the backend
    terminated) it reconnects with a growing back-off (0.5 s doubling up to ``max_backoff_s``),
    logging the loss and the recovery once each, and its first answer after reconnecting is
    None ("something may have changed"), since notices sent meanwhile were lost.
    """

    def __init__(self, engine: Engine, channel: str, *, max_backoff_s: float = 10.0):
        self._sqlite = is_sqlite(engine)
        self._engine = engine
        self._channel = channel
        self._max_backoff_s = max_backoff_s
        self._connection: Any = None
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._lost = False
        if self._sqlite:
            self._errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
        else:
            import psycopg

            self._errors = (psycopg.Error, OSError)
        self._connect()

    def _connect(self) -> bool:
        """Open the connection; on failure schedule the next try. Returns whether it is open."""
        try:
            if self._sqlite:
                self._connection = sqlite3.connect(
                    self._engine.url.database or "", timeout=30, check_same_thread=False
                )
                self._version = self._data_version()
            else:
                import psycopg

                url = self._engine.url.set(drivername="postgresql").render_as_string(
                    hide_password=False
                )
                self._connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
                self._connection.execute(f"LISTEN {self._channel}")
        except self._errors as error:
            self._disconnected(error)
            return False
        if self._lost:
            log.info("%s listener reconnected", self._channel)
        self._backoff_s = 0.0
        return True

    def _disconnected(self, error: BaseException) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None
        if not self._lost:
            log.warning(
                "%s listener lost its connection, reconnecting: %s",
                self._channel,
                str(error).strip().splitlines()[0] if str(error).strip() else error,
            )
        self._lost = True
        self._backoff_s = min(self._max_backoff_s, max(0.5, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s

    def _data_version(self) -> int:
        return self._connection.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, timeout: float) -> set[int] | None:
        """Wait up to ``timeout`` seconds. Returns the conversation ids notified (PostgreSQL),
        None when something may have changed but the database cannot say what (SQLite, or just
        reconnected), or an empty set when nothing happened (or the database is still away)."""
        deadline = time.monotonic() + timeout
        if self._connection is None:
            time.sleep(max(0.0, min(self._retry_at, deadline) - time.monotonic()))
            if time.monotonic() < self._retry_at or not self._connect():
                return set()
            self._lost = False
            return None
        try:
            return self._wait(deadline)
        except self._errors as error:
            self._disconnected(error)
        return set()

    def _wait(self, deadline: float) -> set[int] | None:
        if self._sqlite:
            while True:
                version = self._data_version()
                if version != self._version:
                    self._version = version
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return set()
                time.sleep(min(SQLITE_POLL_S, left))
        ids: set[int] = set()
        timeout = max(0.0, deadline - time.monotonic())
        for notice in self._connection.notifies(timeout=timeout, stop_after=1):
            ids.add(int(notice.payload))
        # Drain whatever else is already queued without waiting.
        for notice in self._connection.notifies(timeout=0, stop_after=1000):
            ids.add(int(notice.payload))
        return ids

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
