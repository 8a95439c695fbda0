"""Per-process caches of what every participant request reads: the statements participants may
see (keyed by the conversation's revision) and the routing priorities (keyed by result tick)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from polis_like.storage import conversations, results


@dataclass(frozen=True)
class Visible:
    sids: np.ndarray  # sorted
    texts: dict[int, tuple[str, bool]]  # sid -> (text, is_meta)


_lock = threading.Lock()
_visible: dict[int, tuple[int, str, Visible]] = {}
_priority: dict[int, tuple[int, np.ndarray]] = {}
_documents: dict[int, tuple[int, results.ResultsDocument | None]] = {}


def visible(session: Session, conversation_id: int, revision: int, moderation: str) -> Visible:
    """The statements participants may see (the rule of ``conversations.visible_statuses``)."""
    cached = _visible.get(conversation_id)
    if cached and cached[0] == revision and cached[1] == moderation:
        return cached[2]
    rows = conversations.visible_statements(session, conversation_id, moderation)
    value = Visible(
        np.array([sid for sid, _, _ in rows], dtype=np.int64),
        {sid: (text, is_meta) for sid, text, is_meta in rows},
    )
    with _lock:
        _visible[conversation_id] = (revision, moderation, value)
    return value


def priority(session: Session, conversation_id: int, tick: int) -> np.ndarray:
    """Routing priority by sid from the result of ``tick`` (empty before the first result).

    While one thread reads a new tick's priorities, the others keep drawing with the previous
    tick's: a vote a few milliseconds early routes as well, and a new tick does not send every
    thread of the process to read and parse the same document at once.
    """
    cached = _priority.get(conversation_id)
    if cached and cached[0] == tick:
        return cached[1]
    if cached is not None and cached[0] < tick and not _claim(conversation_id, tick):
        return cached[1]  # another thread is reading it
    try:
        # From the parsed document the pages share: one read and parse per tick and process.
        values = results.priorities(document(session, conversation_id, tick))
        with _lock:
            _priority[conversation_id] = (tick, values)
    finally:
        with _lock:
            if _loading.get(conversation_id) == tick:
                del _loading[conversation_id]
    return values


_loading: dict[int, int] = {}
_reading: dict[int, threading.Lock] = {}


def _claim(conversation_id: int, tick: int) -> bool:
    """True when this thread is to read ``tick`` (no other thread reads it or a newer one)."""
    with _lock:
        if _loading.get(conversation_id, -1) >= tick:
            return False
        _loading[conversation_id] = tick
        return True


def document(session: Session, conversation_id: int, tick: int) -> results.ResultsDocument | None:
    """The results document of ``tick``, read and parsed once per tick and process (threads
    asking for the same one meanwhile wait for it)."""
    cached = _documents.get(conversation_id)
    if cached and cached[0] == tick:
        return cached[1]
    with _lock:
        reading = _reading.setdefault(conversation_id, threading.Lock())
    with reading:
        cached = _documents.get(conversation_id)
        if cached and cached[0] == tick:
            return cached[1]
        value = results.read_document(session, conversation_id, tick) if tick > 0 else None
        with _lock:
            _documents[conversation_id] = (tick, value)
    return value
