"""Replaying a conversation's vote history through the incremental update, as Pol.is saw it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..conversation import VoteEvents
from .engine import MathResult, update
from .params import MathParams
from .state import MathState

#: Pol.is's worker polls every second but a whole-conversation update takes it seconds more;
#: votes arriving within this window of the batch's first vote are taken as one update.
DEFAULT_WINDOW_MS = 10_000


def batches(timestamps_ms: np.ndarray, window_ms: int) -> Iterator[slice]:
    """Slices of time-sorted timestamps: a batch closes once ``window_ms`` has passed."""
    start, n = 0, len(timestamps_ms)
    while start < n:
        stop = int(np.searchsorted(timestamps_ms, timestamps_ms[start] + window_ms, side="left"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


def replay(
    events: VoteEvents,
    *,
    n_participants: int,
    n_statements: int,
    moderated_out: np.ndarray | None = None,
    meta: np.ndarray | None = None,
    banned: np.ndarray | None = None,
    params: MathParams | None = None,
    window_ms: int = DEFAULT_WINDOW_MS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[MathResult, MathState]:
    """Feed the events in time order, batch by batch, through :func:`update`.

    The path-dependent memory (sticky membership, the k smoother, warm starts) then evolves as
    it did in the Pol.is worker. Moderation is applied from the start (exports do not say when
    it happened). ``progress(done_events, total_events)`` is called after every batch.
    """
    ordered = events.take(events.time_order())
    state = MathState.initial(params or MathParams(), n_participants, n_statements)
    changes = dict(moderated_out=moderated_out, meta=meta, banned=banned)
    result = None
    for part in batches(ordered.timestamp_ms, window_ms):
        result, state = update(state, ordered.take(part), **changes)
        changes = {}
        if progress is not None:
            progress(part.stop, len(ordered))
    if result is None:
        result, state = update(state, None, **changes)
    return result, state
