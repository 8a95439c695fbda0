"""The results broadcaster of a web process: one database listener for all its event streams.

One background thread per process (started by the first stream) waits for results (PostgreSQL
LISTEN, SQLite data_version), reads the new ticks and pending counts once, and wakes the
streams of those conversations: the threaded ones through a condition, the ones the ASGI front
serves on its event loop through the listeners it registers (:meth:`Broadcaster.listen`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from flask import current_app

from polis_like.errors import Unavailable
from polis_like.storage import jobs, queue
from polis_like.storage import results as stored
from polis_like.storage.notify import RESULTS, Waiter
from polis_like.throttle import ThrottledLog

log = logging.getLogger("polis_like.server")
_lock = threading.Lock()

#: A listener gets the ids of the conversations that changed (called on the broadcaster's thread).
Listener = Callable[[set[int]], object]


class Broadcaster:
    """Wakes the event streams of a process when their conversation gets a new tick.

    Its thread outlives database outages: the :class:`Waiter` reconnects by itself, and a
    failing read is logged once per ``log_every_s`` (not a traceback a second) and retried.
    """

    def __init__(self, engine, sessions, *, log_every_s: float = 10.0):
        self.engine = engine
        self.sessions = sessions
        self.condition = threading.Condition()
        self.ticks: dict[int, int] = {}
        #: Each watched conversation's revision and pending count, for staff streams.
        self.revisions: dict[int, tuple[int, int]] = {}
        self.streams: dict[int, int] = {}
        self.summaries: dict[tuple[int, int], dict] = {}
        self.events: dict[tuple[int, int], str] = {}
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._log = ThrottledLog(log, log_every_s)

    def open(self, conversation_id: int, limit: int) -> None:
        """Count a new stream of the conversation; :class:`Unavailable` (503) past ``limit``."""
        with self.condition:
            if sum(self.streams.values()) >= limit:
                raise Unavailable("too many open event streams; try again shortly")
            self.streams[conversation_id] = self.streams.get(conversation_id, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="results-broadcaster", daemon=True
                )
                self._thread.start()

    def close(self, conversation_id: int) -> None:
        with self.condition:
            self.streams[conversation_id] -= 1
            if not self.streams[conversation_id]:
                del self.streams[conversation_id]

    def open_streams(self) -> int:
        """How many streams of this process are open."""
        with self.condition:
            return sum(self.streams.values())

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` (on the broadcaster's thread) with the conversations that changed."""
        with self.condition:
            self._listeners.append(listener)

    def stop(self) -> None:
        """End the background thread (when the app is torn down, in tests)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        waiter = Waiter(self.engine, RESULTS)
        failing = False
        try:
            while not self._stopped.is_set():
                try:
                    self._poll()
                except Exception as error:
                    failing = True
                    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                    self._log.warning(
                        "poll",
                        "results broadcaster cannot read the results: %s: %s",
                        type(error).__name__,
                        first,
                    )
                    self._stopped.wait(1.0)
                    continue
                if failing:
                    failing = False
                    self._log.forget("poll")
                    log.info("results broadcaster reads the results again")
                waiter.wait(1.0)
        finally:
            waiter.close()

    def _poll(self) -> None:
        with self.condition:
            watched = list(self.streams)
        if not watched:
            return
        with self.sessions() as session:
            ticks = jobs.current_ticks(session, watched)
            revisions = {}
            for conversation_id, revision in queue.queue_states(session, watched).items():
                known = self.revisions.get(conversation_id)
                if known is None or known[0] != revision:
                    revisions[conversation_id] = (
                        revision,
                        queue.pending_count(session, conversation_id),
                    )
        with self.condition:
            new_ticks = {c: t for c, t in ticks.items() if self.ticks.get(c) != t}
        # Read each new result's summary here, once, so that no stream waits on the database.
        for conversation_id, tick in new_ticks.items():
            self.results_event(conversation_id, tick)
        with self.condition:
            self.revisions.update(revisions)
            self.ticks.update(new_ticks)
            changed = set(revisions) | set(new_ticks)
            if changed:
                self.condition.notify_all()
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(changed)

    def now(self, conversation_id: int, seen: tuple[int, int]) -> tuple[int, int]:
        """The conversation's (tick, revision) as last read; ``seen``'s where none was read."""
        with self.condition:
            return (
                self.ticks.get(conversation_id, seen[0]),
                self.revisions.get(conversation_id, (seen[1], 0))[0],
            )

    def wait_any(
        self, conversation_id: int, seen: tuple[int, int], timeout: float
    ) -> tuple[int, int]:
        """(tick, revision) once either passes ``seen``, or ``seen`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                now = self.now(conversation_id, seen)
                left = deadline - time.monotonic()
                if moved(now, seen) or left <= 0:
                    return now
                self.condition.wait(left)

    def seen_tick(self, conversation_id: int, tick: int) -> None:
        """Note a tick a stream read itself (what an earlier stream left here may be stale)."""
        with self.condition:
            self.ticks[conversation_id] = max(self.ticks.get(conversation_id, 0), tick)

    def pending(self, conversation_id: int) -> int:
        """The number of pending statements at the conversation's last known revision."""
        with self.condition:
            return self.revisions.get(conversation_id, (0, 0))[1]

    def has_summary(self, conversation_id: int, tick: int) -> bool:
        """Whether :meth:`summary` of this tick is read already."""
        return (conversation_id, tick) in self.summaries

    def results_event(self, conversation_id: int, tick: int) -> str:
        """The ``results`` event of this tick, as sent (made once for all the streams)."""
        key = (conversation_id, tick)
        text = self.events.get(key)
        if text is None:
            text = self.events[key] = event("results", self.summary(*key), tick)
            if len(self.events) > 1000:
                self.events.pop(next(iter(self.events)), None)
        return text

    def summary(self, conversation_id: int, tick: int) -> dict:
        """The ``results`` event's data for this tick (read once per process)."""
        key = (conversation_id, tick)
        known = self.summaries.get(key)
        if known is not None:
            return known
        with self.sessions() as session:
            read = stored.read_summary(session, conversation_id, tick)
        summary = {"tick": tick, "computed_ms": None, "k": None, "participation": None}
        summary.update(read or {})
        with self.condition:
            self.summaries[key] = summary
            if len(self.summaries) > 1000:
                self.summaries.pop(next(iter(self.summaries)))
        return summary


def event(name: str, data: dict, event_id: int | None = None) -> str:
    """One server-sent event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def moved(now: tuple[int, int], seen: tuple[int, int]) -> bool:
    """Whether a stream that has seen ``seen`` has something to send: a newer tick, or another
    revision."""
    return now[0] > seen[0] or now[1] != seen[1]


def broadcaster() -> Broadcaster:
    """The app's broadcaster (made by the first stream of the process)."""
    app = current_app
    with _lock:
        if "polis_like.broadcaster" not in app.extensions:
            app.extensions["polis_like.broadcaster"] = Broadcaster(
                app.extensions["polis_like.engine"],
                app.extensions["polis_like.sessions"],
                log_every_s=app.config["LOG_EVERY_S"],
            )
    return app.extensions["polis_like.broadcaster"]
