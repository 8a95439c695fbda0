"""Cheap wake-ups between processes: PostgreSQL LISTEN/NOTIFY, SQLite's data_version.

Writers call :func:`notify_change` (votes, statements, moderation) or :func:`notify_result`
(a new math result) inside their transaction; PostgreSQL delivers the notice at commit. A
:class:`Waiter` blocks until a notice arrives on PostgreSQL, or until ``PRAGMA data_version``
moves on SQLite (it moves whenever another connection commits to the file), then the caller
reads what changed.
"""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from .db import is_sqlite

CHANGES = "polis_like_changes"
RESULTS = "polis_like_results"
SQLITE_POLL_S = 0.02


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def _notify(session: Session, channel: str, conversation_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"channel": channel, "payload": str(conversation_id)})


def notify_change(session: Session, conversation_id: int) -> None:
    """Wake the math workers: the conversation's input changed."""
    _notify(session, CHANGES, conversation_id)


def notify_result(session: Session, conversation_id: int) -> None:
    """Wake the web processes' event streams: a new result was published."""
    _notify(session, RESULTS, conversation_id)


class Waiter:
    """Blocks until another process may have written something of interest."""

    def __init__(self, engine: Engine, channel: str):
        self._sqlite = is_sqlite(engine)
        if self._sqlite:
            path = engine.url.database
            self._connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._version = self._data_version()
        else:
            import psycopg

            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._connection = psycopg.connect(url, autocommit=True)
            self._connection.execute(f"LISTEN {channel}")

    def _data_version(self) -> int:
        return self._connection.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, timeout: float) -> set[int] | None:
        """Wait up to ``timeout`` seconds. Returns the conversation ids notified (PostgreSQL),
        None when something changed but the database cannot say what (SQLite), or an empty set
        when nothing happened."""
        deadline = time.monotonic() + timeout
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
        for notice in self._connection.notifies(timeout=timeout, stop_after=1):
            ids.add(int(notice.payload))
        # Drain whatever else is already queued without waiting.
        for notice in self._connection.notifies(timeout=0, stop_after=1000):
            ids.add(int(notice.payload))
        return ids

    def close(self) -> None:
        self._connection.close()
