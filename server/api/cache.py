"""Per-process caches of what every participant request reads: the statements participants may
see (keyed by the conversation's revision) and the routing priorities (keyed by result tick)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from polis_like.storage.models import ACCEPTED, REJECTED, ResultRow, StatementRow


@dataclass(frozen=True)
class Visible:
    sids: np.ndarray  # sorted
    texts: dict[int, tuple[str, bool]]  # sid -> (text, is_meta)


_lock = threading.Lock()
_visible: dict[int, tuple[int, str, Visible]] = {}
_priority: dict[int, tuple[int, np.ndarray]] = {}


def visible(session: Session, conversation_id: int, revision: int, moderation: str) -> Visible:
    """The statements participants may see: accepted ones (strict), all but rejected (open)."""
    cached = _visible.get(conversation_id)
    if cached and cached[0] == revision and cached[1] == moderation:
        return cached[2]
    status = StatementRow.status == ACCEPTED if moderation == "strict" else StatementRow.status != REJECTED
    rows = session.execute(select(StatementRow.sid, StatementRow.text, StatementRow.is_meta).where(
        StatementRow.conversation_id == conversation_id, status).order_by(StatementRow.sid)).all()
    value = Visible(np.array([r.sid for r in rows], dtype=np.int64),
                    {r.sid: (r.text, r.is_meta) for r in rows})
    with _lock:
        _visible[conversation_id] = (revision, moderation, value)
    return value


def priority(session: Session, conversation_id: int, tick: int) -> np.ndarray:
    """Routing priority by sid from the result of ``tick`` (empty before the first result)."""
    cached = _priority.get(conversation_id)
    if cached and cached[0] == tick:
        return cached[1]
    values = np.empty(0)
    if tick > 0:
        text = session.scalar(select(ResultRow.result).where(
            ResultRow.conversation_id == conversation_id, ResultRow.tick == tick))
        if text is not None:
            statements = json.loads(text)["statements"]
            values = np.zeros(len(statements))
            for sid, entry in statements.items():
                values[int(sid)] = entry["priority"] or 0.0
    with _lock:
        _priority[conversation_id] = (tick, values)
    return values
