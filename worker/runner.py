"""The math worker: keeps every active conversation's math current.

One loop: wait for a wake-up (PostgreSQL NOTIFY, SQLite's data_version), find the conversations
whose votes or revision moved past their latest result, take each one's lease, read what changed
and run :func:`polis_like.math.update`, then publish the result with the next tick. Whatever
arrives during a computation is read by the next one. A conversation's state stays in memory
while the worker holds its lease and is saved every ``save_every_s``, so that a restarted worker
(or one taking over an expired lease) resumes from it. The SQL and the lease protocol live in
:mod:`polis_like.storage.jobs`; this module only decides what to do when.

A database outage or a long lock (SQLite) is not a conversation's failure: the worker logs it
once per interval, backs off and carries on when the database answers again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from polis_like.storage import jobs
from polis_like.storage.db import is_outage, session_factory
from polis_like.storage.math_input import participation, read_math_input
from polis_like.storage.notify import CHANGES, Waiter
from polis_like.storage.results import build_document, positions_blob
from polis_like.storage.votes import Watermark
from polis_like.throttle import ThrottledLog

if TYPE_CHECKING:  # the math is imported when first needed (see warm_up)
    from polis_like.conversation import VoteEvents
    from polis_like.math import MathParams, MathResult, MathState

log = logging.getLogger("polis_like.worker")

#: The longest pause between tries while the database is unreachable (seconds).
MAX_OUTAGE_BACKOFF_S = 30.0

#: Every background save still running, in any worker of this process.
_saves: set[threading.Thread] = set()
_saves_lock = threading.Lock()


def warm_up() -> threading.Thread:
    """Import the math (numpy, scipy, numba's kernels: most of a worker's start) in another
    thread, while this one connects, claims a conversation and reads its votes; the first
    computation then finds it imported, or waits for the rest."""

    def load() -> None:
        import polis_like.math.engine  # noqa: F401

    thread = threading.Thread(target=load, name="import-math", daemon=True)
    thread.start()
    return thread


def math_update(state: MathState, events: VoteEvents, **changes) -> tuple[MathResult, MathState]:
    """:func:`polis_like.math.update`, imported when first called."""
    from polis_like.math import update

    return update(state, events, **changes)


def join_saves(timeout: float | None = None) -> None:
    """Wait for every background state save of this process (before closing its engine)."""
    with _saves_lock:
        running = list(_saves)
    for thread in running:
        thread.join(timeout)


#: A worker that published results reclaims the space of the deleted ones this often.
RECLAIM_EVERY_S = 10.0


@dataclass
class _Memory:
    """What the worker holds in memory for one conversation."""

    state: MathState
    watermark: Watermark
    revision: int
    tick: int
    n_events: int
    saved_at: float = 0.0
    used_at: float = field(default_factory=time.monotonic)


class Worker:
    """A math worker. ``run()`` loops until ``stop()``; ``step()`` does one pass (for tests)."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str | None = None,
        lease_s: float = 60.0,
        save_every_s: float = 30.0,
        idle_s: float = 600.0,
        poll_s: float = 1.0,
        interval_s: float = 0.0,
        log_every_s: float = 10.0,
        params: MathParams | None = None,
    ):
        self.engine = engine
        self.sessions = session_factory(engine)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self.save_every_s = save_every_s
        self.idle_s = idle_s
        self.poll_s = poll_s
        #: A conversation's next computation starts at least this many seconds after the end
        #: of its last one (coalescing).
        self.interval_s = interval_s
        self._due_at: dict[int, float] = {}
        self.log_every_s = log_every_s
        if params is None:
            from polis_like.math import MathParams

            params = MathParams()
        self.params = params
        self.memory: dict[int, _Memory] = {}
        self._retry_at: dict[int, float] = {}
        self._saving: dict[int, threading.Thread] = {}
        self._renewed_at = 0.0
        self._reclaimed_at = time.monotonic()
        self._stop = threading.Event()
        #: Conversations that changed too soon after their last computation (this step).
        self._deferred: set[int] = set()
        #: Called with (conversation_id, "start" | "end") around each computation (tests).
        self.on_compute = None

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Keep every conversation current until :meth:`stop`, through database outages."""
        log.info("worker %s started", self.name)
        outage = _Outage(self.log_every_s)
        waiter: Waiter | None = None
        notified: set[int] | None = None
        try:
            while not self._stop.is_set():
                try:
                    if not (notified and notified <= self._deferred and self._wait_s() > 0):
                        self.step()
                    # else: only conversations put off until they are due changed: wait
                    if waiter is None:
                        waiter = Waiter(self.engine, CHANGES)
                    if outage.ended():
                        log.info("the database answers again; the worker carries on")
                    notified = waiter.wait(self._wait_s())
                except Exception as error:
                    if not is_outage(error):
                        raise
                    if waiter is not None:
                        _close_quietly(waiter)
                        waiter = None
                    self._stop.wait(outage.failed(error))
        finally:
            if waiter is not None:
                _close_quietly(waiter)
            try:
                self.release_all()
            except Exception as error:
                log.warning("could not release the leases on stopping: %s", _one_line(error))
            log.info("worker %s stopped", self.name)

    def stop(self) -> None:
        self._stop.set()

    def _wait_s(self) -> float:
        """How long to wait for a wake-up: the poll interval, or less when a conversation that
        changed too soon after its last computation becomes due."""
        if not self._deferred:
            return self.poll_s
        due = min(self._due_at.get(c, 0.0) for c in self._deferred) - time.monotonic()
        return min(self.poll_s, max(due, 0.0))

    def step(self) -> list[int]:
        """Renew leases, then compute every conversation that changed; returns their ids."""
        self._renew()
        computed = []
        self._deferred = set()
        with self.sessions() as session:
            changed = jobs.dirty(session)
        for conversation_id in changed:
            if self._stop.is_set():
                break
            now = time.monotonic()
            if now < self._retry_at.get(conversation_id, 0.0):
                continue
            if now < self._due_at.get(conversation_id, 0.0):
                self._deferred.add(conversation_id)  # computed when due: one update for all
                continue
            with self.sessions.begin() as session:
                acquired = jobs.acquire(session, conversation_id, self.name, self.lease_s)
            if not acquired:
                self.memory.pop(conversation_id, None)
                continue
            if self._compute_logged(conversation_id):
                computed.append(conversation_id)
                # from the end of the computation: a slow one still leaves the interval free
                self._due_at[conversation_id] = time.monotonic() + self.interval_s
        self._evict_idle()
        if computed and time.monotonic() - self._reclaimed_at >= RECLAIM_EVERY_S:
            self._reclaimed_at = time.monotonic()
            jobs.reclaim_space(self.engine)
        return computed

    # -- leases --------------------------------------------------------------------------

    def _renew(self) -> None:
        if not self.memory or time.monotonic() - self._renewed_at < self.lease_s / 4:
            return
        self._renewed_at = time.monotonic()
        with self.sessions.begin() as session:
            held = jobs.renew(session, self.memory, self.name, self.lease_s)
        for lost in set(self.memory) - held:
            log.warning("lost the lease of conversation %d", lost)
            del self.memory[lost]

    def release_all(self) -> None:
        """Save every state and give up every lease (on a clean shutdown)."""
        self._wait_for_saves()
        for conversation_id, memory in list(self.memory.items()):
            try:
                self._save(conversation_id, memory)
            except Exception:
                log.exception("could not save the state of conversation %d", conversation_id)
        self.memory.clear()
        with self.sessions.begin() as session:
            jobs.release(session, self.name)

    def _evict_idle(self) -> None:
        now = time.monotonic()
        idle = [c for c, m in self.memory.items() if now - m.used_at > self.idle_s]
        if idle:
            self._wait_for_saves()
        for conversation_id in idle:
            self._save(conversation_id, self.memory[conversation_id], release=True)
            del self.memory[conversation_id]
            self._due_at.pop(conversation_id, None)

    # -- one computation -----------------------------------------------------------------

    def _compute_logged(self, conversation_id: int) -> bool:
        """Compute one conversation; a failure is recorded and retried later, the others go on.

        A database outage is no failure of the conversation's: it goes up to :meth:`run`.
        """
        try:
            if self.compute(conversation_id) is None:
                return False  # the lease went to another worker, which carries on
        except Exception as error:
            if is_outage(error):
                raise
            log.exception("conversation %d failed", conversation_id)
            self.memory.pop(conversation_id, None)
            message = "".join(traceback.format_exception_only(error)).strip()
            with self.sessions.begin() as session:
                delay = jobs.record_failure(session, conversation_id, message)
            self._retry_at[conversation_id] = time.monotonic() + delay
            return False
        self._retry_at.pop(conversation_id, None)
        return True

    def compute(self, conversation_id: int) -> int | None:
        """Bring one conversation's result up to date (the caller holds its lease).

        Returns the published tick, or None when the lease was lost meanwhile.
        """
        # With the line that ends it (the tick, a lost lease or a failure), each computation's
        # span in the log: which worker computed what when (benchmarks/faults.py checks that
        # no two workers ever compute one conversation at once).
        log.info("conversation %d: computing", conversation_id)
        if self.on_compute:
            self.on_compute(conversation_id, "start")
        heartbeat = threading.Event()
        beating = threading.Thread(
            target=self._heartbeat,
            args=(conversation_id, heartbeat),
            name=f"lease-{conversation_id}",
            daemon=True,
        )
        beating.start()
        with self.sessions.begin() as session:
            jobs.computing(session, conversation_id, self.name, True)
        try:
            return self._compute(conversation_id)
        finally:
            heartbeat.set()
            beating.join()
            try:
                with self.sessions.begin() as session:
                    jobs.computing(session, conversation_id, self.name, False)
            except Exception as error:  # an outage: the next acquire or lease clears it
                log.warning(
                    "could not record the end of computing conversation %d: %s",
                    conversation_id,
                    _one_line(error),
                )
            if self.on_compute:
                self.on_compute(conversation_id, "end")

    def _heartbeat(self, conversation_id: int, done: threading.Event) -> None:
        """Renew the lease while a long computation runs (a first one on millions of votes)."""
        while not done.wait(self.lease_s / 4):
            try:
                with self.sessions.begin() as session:
                    jobs.renew(session, [conversation_id], self.name, self.lease_s)
            except Exception as error:
                log.warning(
                    "could not renew the lease of conversation %d: %s",
                    conversation_id,
                    _one_line(error),
                )

    def _compute(self, conversation_id: int) -> int | None:
        started = time.perf_counter()
        with self.sessions() as session:
            memory = self.memory.get(conversation_id)
            if memory is None or memory.tick != jobs.current_tick(session, conversation_id):
                memory = self._load(session, conversation_id)
            seen = memory.revision if memory.state.n_updates else None
            read = read_math_input(
                session, conversation_id, after=memory.watermark, revision_seen=seen
            )
            n_events = memory.n_events + read.votes.n_read
            counts = participation(session, conversation_id, n_events)
        result, state = math_update(memory.state, read.votes.events, **read.changes())
        duration_ms = (time.perf_counter() - started) * 1000

        def document(tick: int, computed_ms: int):
            return build_document(
                result,
                tick=tick,
                computed_ms=computed_ms,
                duration_ms=duration_ms,
                participation=counts,
            )

        with self.sessions.begin() as session:
            tick = jobs.publish(
                session,
                conversation_id,
                self.name,
                self.lease_s,
                watermark=read.votes.watermark,
                revision=read.revision,
                duration_ms=duration_ms,
                document=document,
                positions=positions_blob(result),
            )
        if tick is None:
            log.warning("lost the lease of conversation %d before publishing", conversation_id)
            self.memory.pop(conversation_id, None)
            return None
        memory = _Memory(
            state=state,
            watermark=read.votes.watermark,
            revision=read.revision,
            tick=tick,
            n_events=n_events,
            saved_at=memory.saved_at,
        )
        self.memory[conversation_id] = memory
        if time.monotonic() - memory.saved_at >= self.save_every_s:
            self._save_in_background(conversation_id, memory)
        log.info(
            "conversation %d: tick %d, %d new votes, %.0f ms",
            conversation_id,
            tick,
            read.votes.n_read,
            duration_ms,
        )
        return tick

    def _load(self, session, conversation_id: int) -> _Memory:
        """The saved state, or an empty one; with the tick of the latest published result."""
        from polis_like.math import MathState

        tick = jobs.current_tick(session, conversation_id)
        saved = jobs.load_state(session, conversation_id)
        if saved is None:
            return _Memory(
                state=MathState.initial(self.params),
                watermark=Watermark(),
                revision=-1,
                tick=tick,
                n_events=0,
            )
        try:
            state = MathState.from_bytes(saved.payload)
        except ValueError as error:  # a state of an older version of the math: start over
            log.warning("conversation %d: recomputing from every vote (%s)", conversation_id, error)
            return _Memory(
                state=MathState.initial(self.params),
                watermark=Watermark(),
                revision=-1,
                tick=tick,
                n_events=0,
            )
        # revision -1: re-read moderation and bans, to be safe
        return _Memory(
            state=state,
            watermark=saved.watermark,
            revision=-1,
            tick=tick,
            n_events=saved.n_events,
            saved_at=time.monotonic(),
        )

    # -- saving --------------------------------------------------------------------------

    def _save(
        self,
        conversation_id: int,
        memory: _Memory,
        payload: bytes | None = None,
        *,
        release: bool = False,
    ) -> None:
        payload = payload if payload is not None else memory.state.to_bytes()
        with self.sessions.begin() as session:
            jobs.save_state(
                session,
                conversation_id,
                tick=memory.tick,
                watermark=memory.watermark,
                revision=memory.revision,
                payload=payload,
            )
            if release:
                jobs.release(session, self.name, conversation_id)
        memory.saved_at = time.monotonic()

    def _save_in_background(self, conversation_id: int, memory: _Memory) -> None:
        """Save the state from another thread, so that a large one (seconds to compress at
        100k participants) never holds up the next vote's result. Updates make new states
        rather than change old ones, so the thread reads a stable snapshot."""
        running = self._saving.get(conversation_id)
        if running is not None and running.is_alive():
            return
        memory.saved_at = time.monotonic()

        def save() -> None:
            try:
                self._save(conversation_id, memory, memory.state.to_bytes())
            except Exception as error:
                if is_outage(error):
                    log.warning(
                        "could not save the state of conversation %d: %s",
                        conversation_id,
                        _one_line(error),
                    )
                else:
                    log.exception("could not save the state of conversation %d", conversation_id)
            finally:
                with _saves_lock:
                    _saves.discard(threading.current_thread())

        thread = threading.Thread(target=save, name=f"save-{conversation_id}", daemon=True)
        self._saving[conversation_id] = thread
        with _saves_lock:
            _saves.add(thread)
        thread.start()

    def _wait_for_saves(self) -> None:
        for thread in list(self._saving.values()):
            thread.join()
        self._saving.clear()


class _Outage:
    """Back-off and log-once bookkeeping while the database is unreachable."""

    def __init__(self, log_every_s: float) -> None:
        self.failures = 0
        self.log = ThrottledLog(log, log_every_s)

    def failed(self, error: BaseException) -> float:
        """Note a failed try (logged once per interval); returns how long to pause."""
        self.failures += 1
        self.log.warning(
            ("outage",), "the database does not answer; backing off: %s", _one_line(error)
        )
        return min(MAX_OUTAGE_BACKOFF_S, 0.5 * 2.0 ** min(self.failures, 8))

    def ended(self) -> bool:
        """Whether a try succeeded after failures (and reset the count)."""
        ended, self.failures = self.failures > 0, 0
        if ended:
            self.log.forget(("outage",))  # the next outage is news again
        return ended


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _close_quietly(waiter: Waiter) -> None:
    try:
        waiter.close()
    except Exception:
        pass
