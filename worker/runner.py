"""The math worker: keeps every active conversation's math current.

One loop: wait for a wake-up (PostgreSQL NOTIFY, SQLite's data_version), find the conversations
whose votes or revision moved past their latest result, take each one's lease, read only the
vote events past its high-water mark, run :func:`polis_like.math.update` and publish the result
with the next tick. Whatever arrives during a computation is read by the next one. A
conversation's state stays in memory while the worker holds its lease; it is saved to the
database every ``save_every_s`` so that a restarted worker (or another one taking over an
expired lease) resumes from it.
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

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from polis_like.conversation import VoteEvents
from polis_like.math import MathParams, MathState, update as math_update
from polis_like.storage.db import now_ms, session_factory
from polis_like.storage.models import (
    ACCEPTED, PENDING, REJECTED, ConversationRow, JobRow, ParticipantRow, ResultRow, StateRow,
    StatementRow, VoteEventRow,
)
from polis_like.storage.notify import CHANGES, Waiter, notify_result

from .documents import positions_blob, result_document

log = logging.getLogger("polis_like.worker")

KEEP_RESULTS = 10

#: Every background save still running, in any worker of this process.
_saves: set[threading.Thread] = set()
_saves_lock = threading.Lock()


def join_saves(timeout: float | None = None) -> None:
    """Wait for every background state save of this process (before closing its engine)."""
    with _saves_lock:
        running = list(_saves)
    for thread in running:
        thread.join(timeout)


@dataclass
class _Memory:
    """What the worker holds in memory for one conversation."""

    state: MathState
    high_water: int
    revision: int
    tick: int
    n_events: int
    saved_at: float = 0.0
    used_at: float = field(default_factory=time.monotonic)


class Worker:
    """A math worker. ``run()`` loops until ``stop()``; ``step()`` does one pass (for tests)."""

    def __init__(self, engine: Engine, *, name: str | None = None, lease_s: float = 60.0,
                 save_every_s: float = 30.0, idle_s: float = 600.0, poll_s: float = 1.0,
                 params: MathParams | None = None):
        self.engine = engine
        self.sessions = session_factory(engine)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self.save_every_s = save_every_s
        self.idle_s = idle_s
        self.poll_s = poll_s
        self.params = params or MathParams()
        self.memory: dict[int, _Memory] = {}
        self._retry_at: dict[int, float] = {}
        self._saving: dict[int, threading.Thread] = {}
        self._renewed_at = 0.0
        self._stop = threading.Event()
        #: Called with (conversation_id, "start" | "end") around each computation (tests).
        self.on_compute = None

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        waiter = Waiter(self.engine, CHANGES)
        log.info("worker %s started", self.name)
        try:
            while not self._stop.is_set():
                self.step()
                waiter.wait(self.poll_s)
        finally:
            waiter.close()
            self.release_all()
            log.info("worker %s stopped", self.name)

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> list[int]:
        """Renew leases, then compute every conversation that changed; returns their ids."""
        self._renew()
        computed = []
        for conversation_id in self._dirty():
            if self._stop.is_set():
                break
            if time.monotonic() < self._retry_at.get(conversation_id, 0.0):
                continue
            if not self._acquire(conversation_id):
                self.memory.pop(conversation_id, None)
                continue
            if self._compute_logged(conversation_id):
                computed.append(conversation_id)
        self._evict_idle()
        return computed

    def _dirty(self) -> list[int]:
        """Conversations whose newest vote or revision is past their latest result."""
        newest = (select(func.max(VoteEventRow.id)).where(VoteEventRow.conversation_id == ConversationRow.id)
                  .scalar_subquery())
        query = (select(ConversationRow.id, ConversationRow.revision, newest, JobRow.high_water,
                        JobRow.revision)
                 .join(JobRow, JobRow.conversation_id == ConversationRow.id))
        with self.sessions() as session:
            rows = session.execute(query).all()
        return [c for c, revision, top, high_water, done in rows
                if (top or 0) > high_water or revision != done]

    # -- leases --------------------------------------------------------------------------

    def _acquire(self, conversation_id: int) -> bool:
        now = time.time()
        with self.sessions.begin() as session:
            taken = session.execute(
                update(JobRow).where(
                    JobRow.conversation_id == conversation_id,
                    (JobRow.owner.is_(None)) | (JobRow.owner == self.name)
                    | (JobRow.lease_until < now))
                .values(owner=self.name, lease_until=now + self.lease_s)).rowcount
        return taken == 1

    def _renew(self) -> None:
        if not self.memory or time.monotonic() - self._renewed_at < self.lease_s / 4:
            return
        self._renewed_at = time.monotonic()
        now = time.time()
        with self.sessions.begin() as session:
            session.execute(update(JobRow).where(
                JobRow.conversation_id.in_(list(self.memory)), JobRow.owner == self.name,
                JobRow.lease_until >= now).values(lease_until=now + self.lease_s))
            held = set(session.scalars(select(JobRow.conversation_id).where(
                JobRow.conversation_id.in_(list(self.memory)), JobRow.owner == self.name)))
        for lost in set(self.memory) - held:
            log.warning("lost the lease of conversation %d", lost)
            del self.memory[lost]

    def release_all(self) -> None:
        """Save every state and give up every lease (on a clean shutdown)."""
        self._wait_for_saves()
        for conversation_id, memory in list(self.memory.items()):
            try:
                with self.sessions.begin() as session:
                    self._save_state(session, conversation_id, memory)
            except Exception:  # noqa: BLE001 - shutting down: log and go on
                log.exception("could not save the state of conversation %d", conversation_id)
        with self.sessions.begin() as session:
            session.execute(update(JobRow).where(JobRow.owner == self.name)
                            .values(owner=None, lease_until=0.0))
        self.memory.clear()

    def _evict_idle(self) -> None:
        now = time.monotonic()
        if any(now - m.used_at > self.idle_s for m in self.memory.values()):
            self._wait_for_saves()
        for conversation_id, memory in list(self.memory.items()):
            if now - memory.used_at > self.idle_s:
                with self.sessions.begin() as session:
                    self._save_state(session, conversation_id, memory)
                    session.execute(update(JobRow).where(
                        JobRow.conversation_id == conversation_id, JobRow.owner == self.name)
                        .values(owner=None, lease_until=0.0))
                del self.memory[conversation_id]

    # -- one computation -----------------------------------------------------------------

    def _compute_logged(self, conversation_id: int) -> bool:
        try:
            if self.compute(conversation_id) is None:
                return False  # the lease went to another worker, which carries on
        except Exception as error:  # noqa: BLE001 - one conversation must not stop the others
            log.exception("conversation %d failed", conversation_id)
            self.memory.pop(conversation_id, None)
            with self.sessions.begin() as session:
                job = session.get(JobRow, conversation_id)
                job.failures += 1
                job.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
                job.error_ms = now_ms()
                delay = min(300.0, 2.0 ** job.failures)
            self._retry_at[conversation_id] = time.monotonic() + delay
            return False
        self._retry_at.pop(conversation_id, None)
        return True

    def compute(self, conversation_id: int) -> int | None:
        """Bring one conversation's result up to date (the caller holds its lease).

        Returns the published tick, or None when the lease was lost meanwhile.
        """
        if self.on_compute:
            self.on_compute(conversation_id, "start")
        heartbeat = threading.Event()
        beating = threading.Thread(target=self._heartbeat, args=(conversation_id, heartbeat),
                                   name=f"lease-{conversation_id}", daemon=True)
        beating.start()
        try:
            return self._compute(conversation_id)
        finally:
            heartbeat.set()
            beating.join()
            if self.on_compute:
                self.on_compute(conversation_id, "end")

    def _heartbeat(self, conversation_id: int, done: threading.Event) -> None:
        """Renew the lease while a long computation runs (a first one on millions of votes)."""
        while not done.wait(self.lease_s / 4):
            try:
                now = time.time()
                with self.sessions.begin() as session:
                    session.execute(update(JobRow).where(
                        JobRow.conversation_id == conversation_id, JobRow.owner == self.name,
                        JobRow.lease_until >= now).values(lease_until=now + self.lease_s))
            except Exception:  # noqa: BLE001 - the publish step checks the lease anyway
                log.exception("could not renew the lease of conversation %d", conversation_id)

    def _compute(self, conversation_id: int) -> int | None:
        started = time.perf_counter()
        with self.sessions() as session:
            conversation = session.get(ConversationRow, conversation_id)
            job = session.get(JobRow, conversation_id)
            memory = self.memory.get(conversation_id)
            if memory is None or memory.tick != job.tick:
                memory = self._load(session, conversation_id)
            events, high_water, n_read = _read_events(session, conversation_id,
                                                      memory.high_water)
            changes = {}
            if conversation.revision != memory.revision or memory.state.n_updates == 0:
                changes = _inputs(session, conversation)
            else:
                changes = {"n_participants": conversation.next_pid,
                           "n_statements": conversation.next_sid}
            participation = _participation(session, conversation, memory.n_events + n_read)
            revision = conversation.revision
        result, state = math_update(memory.state, events, **changes)
        duration_ms = (time.perf_counter() - started) * 1000
        with self.sessions.begin() as session:
            now = time.time()
            tick = session.execute(
                update(JobRow).where(JobRow.conversation_id == conversation_id,
                                      JobRow.owner == self.name, JobRow.lease_until >= now)
                .values(tick=JobRow.tick + 1, high_water=high_water, revision=revision,
                        lease_until=now + self.lease_s, error=None)
                .returning(JobRow.tick)).scalar_one_or_none()
            if tick is None:
                log.warning("lost the lease of conversation %d before publishing", conversation_id)
                self.memory.pop(conversation_id, None)
                session.rollback()
                return None
            computed = now_ms()
            document = result_document(result, tick=tick, computed_ms=computed,
                                       duration_ms=duration_ms, participation=participation)
            session.execute(insert(ResultRow).values(
                conversation_id=conversation_id, tick=tick, high_water=high_water,
                computed_ms=computed, duration_ms=duration_ms,
                result=_dumps(document), positions=positions_blob(result)))
            session.execute(delete(ResultRow).where(ResultRow.conversation_id == conversation_id,
                                                     ResultRow.tick <= tick - KEEP_RESULTS))
            memory = _Memory(state=state, high_water=high_water, revision=revision, tick=tick,
                             n_events=memory.n_events + n_read, saved_at=memory.saved_at)
            notify_result(session, conversation_id)
        self.memory[conversation_id] = memory
        if time.monotonic() - memory.saved_at >= self.save_every_s:
            self._save_in_background(conversation_id, memory)
        log.info("conversation %d: tick %d, %d new votes, %.0f ms", conversation_id, tick,
                 n_read, duration_ms)
        return tick

    def _load(self, session: Session, conversation_id: int) -> _Memory:
        """The saved state, or an empty one; with the tick of the latest published result."""
        job = session.get(JobRow, conversation_id)
        row = session.get(StateRow, conversation_id)
        n_events_before = 0
        if row is not None:
            state = MathState.from_bytes(row.state)
            high_water, revision = row.high_water, -1  # re-read moderation to be safe
            n_events_before = session.scalar(select(func.count()).select_from(VoteEventRow).where(
                VoteEventRow.conversation_id == conversation_id, VoteEventRow.id <= high_water))
            saved_at = time.monotonic()
        else:
            state, high_water, revision, saved_at = MathState.initial(self.params), 0, -1, 0.0
        return _Memory(state=state, high_water=high_water, revision=revision, tick=job.tick,
                       n_events=n_events_before, saved_at=saved_at)

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
                payload = memory.state.to_bytes()
                with self.sessions.begin() as session:
                    self._save_state(session, conversation_id, memory, payload)
            except Exception:  # noqa: BLE001 - the next save retries
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

    def _save_state(self, session: Session, conversation_id: int, memory: _Memory,
                    payload: bytes | None = None) -> None:
        values = {"tick": memory.tick, "high_water": memory.high_water,
                  "revision": memory.revision,
                  "state": payload if payload is not None else memory.state.to_bytes(),
                  "saved_ms": now_ms()}
        if session.get(StateRow, conversation_id) is None:
            session.execute(insert(StateRow).values(conversation_id=conversation_id, **values))
        else:
            # Never overwrite a newer state saved by a worker that took the lease over.
            session.execute(update(StateRow).where(StateRow.conversation_id == conversation_id,
                                                   StateRow.tick <= memory.tick)
                            .values(**values))
        memory.saved_at = time.monotonic()


def _read_events(session: Session, conversation_id: int,
                 after: int) -> tuple[VoteEvents, int, int]:
    """The vote events past ``after`` (each participant's last one per statement), the new
    high-water mark, and how many events were read."""
    table = _event_table(session, conversation_id, after)
    if not len(table):
        return VoteEvents.empty(), after, 0
    # Keep each (participant, statement)'s latest event: the largest time, and at equal times
    # the larger vote, the rule of polis_like.math.matrix.latest_votes and of the import.
    order = np.lexsort((table[:, 3], table[:, 4], table[:, 2], table[:, 1]))
    ordered = table[order]
    last = np.ones(len(ordered), bool)
    last[:-1] = (ordered[1:, 1] != ordered[:-1, 1]) | (ordered[1:, 2] != ordered[:-1, 2])
    kept = ordered[last]
    events = VoteEvents(kept[:, 4], kept[:, 1], kept[:, 2], kept[:, 3])
    return events, int(table[-1, 0]), len(table)


def _event_table(session: Session, conversation_id: int, after: int) -> np.ndarray:
    """(id, pid, sid, vote, created_ms) rows past ``after`` as an int64 array, in id order.

    Read through the driver's cursor in chunks: building SQLAlchemy rows for millions of votes
    (the first computation of an imported conversation) costs many times the query itself.
    """
    placeholder = "%s" if session.get_bind().dialect.name == "postgresql" else "?"
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            "SELECT id, pid, sid, vote, created_ms FROM vote_events "
            f"WHERE conversation_id = {placeholder} AND id > {placeholder} ORDER BY id",
            (conversation_id, after))
        chunks = []
        while True:
            rows = cursor.fetchmany(200_000)
            if not rows:
                break
            chunks.append(np.array(rows, dtype=np.int64))
    finally:
        cursor.close()
    return np.concatenate(chunks) if chunks else np.empty((0, 5), np.int64)


def _inputs(session: Session, conversation: ConversationRow) -> dict:
    """The math's inputs other than votes: sizes, moderation and bans."""
    n_statements, n_participants = conversation.next_sid, conversation.next_pid
    rows = session.execute(select(StatementRow.sid, StatementRow.status, StatementRow.is_meta).where(
        StatementRow.conversation_id == conversation.id)).all()
    out = np.zeros(n_statements, bool)
    meta = np.zeros(n_statements, bool)
    for sid, status, is_meta in rows:
        hidden = status == REJECTED or (conversation.moderation == "strict" and status != ACCEPTED)
        out[sid] = hidden
        meta[sid] = is_meta
    banned = np.zeros(n_participants, bool)
    banned[list(session.scalars(select(ParticipantRow.pid).where(
        ParticipantRow.conversation_id == conversation.id, ParticipantRow.banned)))] = True
    return {"n_participants": n_participants, "n_statements": n_statements,
            "moderated_out": out, "meta": meta, "banned": banned}


def _participation(session: Session, conversation: ConversationRow, n_events: int) -> dict:
    counts = dict(session.execute(
        select(StatementRow.status, func.count()).where(StatementRow.conversation_id == conversation.id)
        .group_by(StatementRow.status)).all())
    participants = session.scalar(select(func.count()).select_from(ParticipantRow).where(
        ParticipantRow.conversation_id == conversation.id))
    return {
        "participants": participants,
        "votes": n_events,
        "statements": sum(counts.values()),
        "accepted": counts.get(ACCEPTED, 0),
        "pending": counts.get(PENDING, 0),
        "rejected": counts.get(REJECTED, 0),
    }


def _dumps(document: dict) -> str:
    import json

    return json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
