"""The server-sent event stream of a conversation: ``results`` after every new tick, and
``statements`` (the pending count) for the conversation's moderators.

The route checks the request (who may watch, the cap on open streams) and reads the opening
state in a request thread like any other. Under ``polis-like serve`` the ASGI front
(:mod:`server.front`) then serves the stream itself on its event loop, so an open stream holds
no thread: the route hands it an :class:`EventStream` through the WSGI environ key
:data:`HANDOFF`. Without the front (Flask's test client, another WSGI server) the stream is a
generator that holds its request thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, request

from polis_like.storage import queue

from .broadcast import Broadcaster, broadcaster, event, moved
from .common import db, moderates
from .results import visible_tick

blueprint = Blueprint("events", __name__)

#: The WSGI environ key of the list into which the route puts its stream for the ASGI front.
HANDOFF = "polis_like.events"
#: How long a browser waits before reconnecting a stream that ended or dropped.
RETRY_MS = 2000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class EventStream:
    """One open stream: what it has sent, and the text of what comes next.

    Serving it is a loop, threaded (:meth:`frames`) or on an event loop (the ASGI front):
    send :meth:`opening`, then until :attr:`ends`, wait up to :meth:`timeout` for the
    conversation to move past :attr:`seen` and send :meth:`step` of what it now is; finally
    :meth:`close`.
    """

    broadcaster: Broadcaster
    conversation_id: int
    staff: bool
    tick: int
    revision: int
    pending: int
    last_event_id: str | None
    max_s: float
    ping_s: float
    seen: tuple[int, int] = (0, 0)
    ends: float = 0.0
    closed: bool = field(default=False, repr=False)

    def opening(self) -> str:
        """The first frames: the reconnection delay, the latest result unless the client has
        it (``Last-Event-ID``), and staff's pending count."""
        text = f"retry: {RETRY_MS}\n\n"
        if self.tick and self.last_event_id != str(self.tick):
            text += self.broadcaster.results_event(self.conversation_id, self.tick)
        if self.staff:
            text += event("statements", {"pending": self.pending, "revision": self.revision})
        self.seen = (self.tick, self.revision)
        self.ends = time.monotonic() + self.max_s
        self.broadcaster.seen_tick(self.conversation_id, self.tick)
        return text

    def timeout(self) -> float:
        """How long to wait for news before the next keep-alive (0 once the stream is over)."""
        return max(0.0, min(self.ping_s, self.ends - time.monotonic()))

    def step(self, now: tuple[int, int]) -> str:
        """The frames for the conversation's (tick, revision) ``now``: a keep-alive when
        nothing moved."""
        if not moved(now, self.seen):
            return ": keep-alive\n\n"
        text = ""
        if now[0] > self.seen[0]:
            text += self.broadcaster.results_event(self.conversation_id, now[0])
        if now[1] != self.seen[1] and self.staff:
            data = {"pending": self.broadcaster.pending(self.conversation_id), "revision": now[1]}
            text += event("statements", data)
        self.seen = now
        return text

    def reads(self, now: tuple[int, int]) -> bool:
        """Whether :meth:`step` of ``now`` would read the database (a summary not read yet)."""
        return now[0] > self.seen[0] and not self.broadcaster.has_summary(
            self.conversation_id, now[0]
        )

    def frames(self) -> Iterator[str]:
        """The whole stream, waiting in this thread."""
        try:
            yield self.opening()
            while (left := self.timeout()) > 0:
                yield self.step(self.broadcaster.wait_any(self.conversation_id, self.seen, left))
        finally:
            self.close()

    def close(self) -> None:
        """Give the stream's place back (once)."""
        if not self.closed:
            self.closed = True
            self.broadcaster.close(self.conversation_id)


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
    config = current_app.config
    hub = broadcaster()
    hub.open(conversation_id, config["MAX_STREAMS"])
    stream = EventStream(
        hub,
        conversation_id,
        staff,
        tick,
        revision,
        pending,
        request.headers.get("Last-Event-ID"),
        config["STREAM_MAX_S"],
        config["STREAM_PING_S"],
    )
    handoff = request.environ.get(HANDOFF)
    if handoff is not None:
        if tick:  # read here, in a request thread, not on the front's event loop
            hub.results_event(conversation_id, tick)
        handoff.append(stream)
        return Response(iter(()), mimetype="text/event-stream", headers=HEADERS)
    return Response(stream.frames(), mimetype="text/event-stream", headers=HEADERS)
