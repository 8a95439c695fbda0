"""Math results: the latest one (with an ETag), and a server-sent event stream of new ticks.

Each web process runs one background thread (started by the first stream) that waits for
results (PostgreSQL LISTEN, SQLite data_version) and wakes the streams of that conversation.
A stream holds one server thread while open, so the number of streams per process is capped
(``MAX_STREAMS``; more get 503) and each stream ends after ``STREAM_MAX_S`` (the browser's
EventSource reconnects by itself), keeping threads free for votes.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from flask import Blueprint, Response, current_app, request

from polis_like.errors import Forbidden, InputError, NotFound, Unavailable
from polis_like.storage import conversations as store
from polis_like.storage import jobs, queue
from polis_like.storage import results as stored
from polis_like.storage.notify import RESULTS, Waiter
from polis_like.throttle import ThrottledLog

from .common import db, moderates, not_modified, tick_etag
from .texts import texts_etag, with_texts

log = logging.getLogger("polis_like.server")
_lock = threading.Lock()

blueprint = Blueprint("results", __name__)


def visible_tick(session, conversation_id: int) -> int:
    """The latest tick of a conversation whose results this request may see."""
    conversation = store.get_conversation(session, conversation_id)
    if not conversation.map_enabled and not moderates(conversation_id):
        raise Forbidden("the results of this conversation are shown to moderators only")
    return jobs.current_tick(session, conversation_id)


@blueprint.get("/conversations/<id:conversation_id>/results")
def results(conversation_id: int):
    """The latest document; ``?include=texts`` adds the statement texts (see watching.py)."""
    include = request.args.get("include")
    if include not in (None, "texts"):
        raise InputError("include must be 'texts'")
    session = db()
    tick = visible_tick(session, conversation_id)
    staff = moderates(conversation_id)

    def etag_of(tick: int) -> str:
        if include is None:
            return tick_etag(conversation_id, tick)
        revision = store.get_conversation(session, conversation_id).revision
        return texts_etag(conversation_id, tick, revision, staff)

    if (unchanged := not_modified(etag_of(tick))) is not None:
        return unchanged
    tick, text = stored.latest_text(session, conversation_id)
    if text is None:
        raise NotFound("no result yet: the worker has not computed this conversation")
    if include == "texts":
        text = with_texts(session, conversation_id, text, staff)
    return Response(
        text,
        mimetype="application/json",
        headers={"ETag": etag_of(tick), "Cache-Control": "no-cache"},
    )


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
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._log = ThrottledLog(log, log_every_s)

    def open(self, conversation_id: int, limit: int) -> None:
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
            changed = bool(revisions)
            self.revisions.update(revisions)
            for conversation_id, tick in ticks.items():
                if self.ticks.get(conversation_id) != tick:
                    self.ticks[conversation_id] = tick
                    changed = True
            if changed:
                self.condition.notify_all()

    def wait(self, conversation_id: int, seen: int, timeout: float) -> int:
        """The conversation's tick once it passes ``seen``, or ``seen`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while self.ticks.get(conversation_id, seen) <= seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.condition.wait(left)
            return self.ticks.get(conversation_id, seen)

    def wait_any(
        self, conversation_id: int, seen: tuple[int, int], timeout: float
    ) -> tuple[int, int]:
        """(tick, revision) once either passes ``seen``, or ``seen`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                now = (
                    self.ticks.get(conversation_id, seen[0]),
                    self.revisions.get(conversation_id, (seen[1], 0))[0],
                )
                left = deadline - time.monotonic()
                if now[0] > seen[0] or now[1] != seen[1] or left <= 0:
                    return now
                self.condition.wait(left)

    def pending(self, conversation_id: int) -> int:
        """The number of pending statements at the conversation's last known revision."""
        with self.condition:
            return self.revisions.get(conversation_id, (0, 0))[1]

    def summary(self, conversation_id: int, tick: int) -> dict:
        """The ``results`` event's data for this tick (read once per process)."""
        key = (conversation_id, tick)
        if key not in self.summaries:
            with self.sessions() as session:
                document = stored.read_document(session, conversation_id, tick)
            self.summaries[key] = {
                "tick": tick,
                "computed_ms": None,
                "k": None,
                "participation": None,
            }
            if document is not None:
                self.summaries[key].update(
                    computed_ms=document.computed_ms,
                    k=document.k,
                    participation=stored.to_plain(document.participation),
                )
            if len(self.summaries) > 1000:
                self.summaries.pop(next(iter(self.summaries)))
        return self.summaries[key]


def _broadcaster() -> Broadcaster:
    app = current_app
    with _lock:
        if "polis_like.broadcaster" not in app.extensions:
            app.extensions["polis_like.broadcaster"] = Broadcaster(
                app.extensions["polis_like.engine"],
                app.extensions["polis_like.sessions"],
                log_every_s=app.config["LOG_EVERY_S"],
            )
    return app.extensions["polis_like.broadcaster"]


def _event(name: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@blueprint.get("/conversations/<id:conversation_id>/events")
def events(conversation_id: int):
    """``results`` events (tick, participation counts) after every update, then keep-alives;
    staff streams also get ``statements`` events (the pending count) when the conversation's
    revision moves: a new statement, a decision, a ban."""
    session = db()
    tick = visible_tick(session, conversation_id)
    staff = moderates(conversation_id)
    revision = queue.queue_states(session, [conversation_id])[conversation_id]
    pending = queue.pending_count(session, conversation_id) if staff else 0
    session.close()
    broadcaster = _broadcaster()
    config = current_app.config
    broadcaster.open(conversation_id, config["MAX_STREAMS"])
    last_seen = request.headers.get("Last-Event-ID")

    def stream():
        try:
            seen = (tick, revision)
            yield "retry: 2000\n\n"
            if tick and last_seen != str(tick):
                yield _event("results", broadcaster.summary(conversation_id, tick), tick)
            if staff:
                yield _event("statements", {"pending": pending, "revision": revision})
            ends = time.monotonic() + config["STREAM_MAX_S"]
            with broadcaster.condition:  # what an earlier stream left here may be stale
                broadcaster.ticks[conversation_id] = max(
                    broadcaster.ticks.get(conversation_id, 0), tick
                )
            while time.monotonic() < ends:
                now = broadcaster.wait_any(
                    conversation_id, seen, min(config["STREAM_PING_S"], ends - time.monotonic())
                )
                if now == seen:
                    yield ": keep-alive\n\n"
                    continue
                if now[0] > seen[0]:
                    yield _event("results", broadcaster.summary(conversation_id, now[0]), now[0])
                if now[1] != seen[1] and staff:
                    data = {"pending": broadcaster.pending(conversation_id), "revision": now[1]}
                    yield _event("statements", data)
                seen = now
        finally:
            broadcaster.close(conversation_id)

    return Response(
        stream(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
