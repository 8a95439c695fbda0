"""One orchestrator composes the steps: votes -> matrix -> PCA -> clusters -> statistics."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from ..conversation import VoteEvents
from . import matrix, moments, pca, stats
from .clustering import Previous, cluster
from .params import MathParams
from .state import NEVER, MathState
from .umap_reducer import umap_positions


@dataclass
class MathResult:
    """The outcome of one update; per-participant arrays have shape (n_participants,).

    ``x``/``y`` are NaN for participants with no vote (or banned); ``group`` is -1 for those not
    clustered. Statement arrays have shape (n_statements,); indices are the caller's indices.
    """

    n_participants: int
    n_statements: int
    n_votes: int
    in_conversation: np.ndarray
    x: np.ndarray
    y: np.ndarray
    base_cluster: np.ndarray
    base_centres: np.ndarray
    base_sizes: np.ndarray
    group: np.ndarray
    k: int
    best_k: int
    silhouettes: dict[int, float]
    group_tallies: stats.Tallies
    repness: list[list[stats.RepStatement]]
    consensus: dict[str, list[stats.MajorityStatement]]
    group_informed_consensus: np.ndarray
    priority: np.ndarray
    components: np.ndarray
    means: np.ndarray
    statement_xy: np.ndarray
    extremity: np.ndarray
    moderated_out: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    def group_members(self, group: int) -> np.ndarray:
        """Indices of the participants in ``group``."""
        return np.flatnonzero(self.group == group)


def compute(
    events: VoteEvents,
    *,
    n_participants: int | None = None,
    n_statements: int | None = None,
    moderated_out: np.ndarray | None = None,
    meta: np.ndarray | None = None,
    banned: np.ndarray | None = None,
    params: MathParams | None = None,
) -> tuple[MathResult, MathState]:
    """Run the whole math on a conversation's vote events, with no earlier state.

    Parameters
    ----------
    events : VoteEvents
        Every vote event, in any order.
    n_participants, n_statements : int, optional
        Sizes of the conversation; at least one more than the largest index in ``events``.
    moderated_out, meta : ndarray of shape (n_statements,), bool, optional
        Rejected-or-meta statements, and meta statements.
    banned : ndarray of shape (n_participants,), bool, optional
    params : MathParams, optional

    Returns
    -------
    (MathResult, MathState) : the result, and the state to pass to :func:`update`.
    """
    state = MathState.initial(params or MathParams())
    return recompute(
        state,
        events,
        n_participants=n_participants,
        n_statements=n_statements,
        moderated_out=moderated_out,
        meta=meta,
        banned=banned,
    )


def update(
    state: MathState, events: VoteEvents | None = None, **changes
) -> tuple[MathResult, MathState]:
    """Apply new vote events (later than every earlier one) and moderation changes to ``state``.

    Only the new events are read; the stored matrix absorbs them in one pass. Keyword arguments
    as in :func:`compute` (sizes and masks; omitted masks keep their values, grown with False).
    """
    events = events if events is not None else VoteEvents.empty()
    started = time.perf_counter()
    shape = _shape(state, events, changes)
    codes = matrix.resize(state.codes, *shape)
    codes = (
        matrix.latest_votes(events, *shape) if codes.nnz == 0 else matrix.merge_votes(codes, events)
    )
    touched = np.unique(events.participant)
    first = _first_votes(events, shape[0], state.participant_first_ms)
    return _run(state, codes, first, changes, time.perf_counter() - started, touched)


def recompute(state: MathState, events: VoteEvents, **changes) -> tuple[MathResult, MathState]:
    """Like :func:`update`, but rebuild the matrix from ``events``, the conversation's every event.

    The path-dependent memory in ``state`` (sticky membership, warm starts, smoother, signs) is
    used as in :func:`update`; so ``update(s, new)`` and ``recompute(s, all)`` agree.
    """
    started = time.perf_counter()
    shape = _shape(state, events, changes)
    codes = matrix.latest_votes(events, *shape)
    first = _first_votes(events, shape[0], np.empty(0, np.int64))
    return _run(state, codes, first, changes, time.perf_counter() - started, None)


def _first_votes(events: VoteEvents, size: int, known: np.ndarray) -> np.ndarray:
    """The time of each participant's first vote, ``events`` included (``NEVER``: none)."""
    first = np.full(size, NEVER, np.int64)
    first[: len(known)] = known
    np.minimum.at(first, events.participant, events.timestamp_ms)
    return first


def first_vote_order(first_ms: np.ndarray) -> np.ndarray:
    """Participants in the order of their first vote (Pol.is's row order); ties by index."""
    return np.lexsort((np.arange(len(first_ms)), first_ms))


def _shape(state: MathState, events: VoteEvents, changes: dict) -> tuple[int, int]:
    """The matrix shape after this update: as given, else grown to fit the events."""
    shape = []
    for axis, (current, name, index) in enumerate(
        (
            (state.shape[0], "n_participants", events.participant),
            (state.shape[1], "n_statements", events.statement),
        )
    ):
        given = changes.get(name)
        needed = int(index.max()) + 1 if len(events) else 0
        if given is not None and given < needed:
            kind = "participant" if axis == 0 else "statement"
            raise ValueError(f"a vote event names a {kind} outside the matrix ({name}={given})")
        shape.append(max(current, given or 0, needed))
    return shape[0], shape[1]


def _mask(new: np.ndarray | None, old: np.ndarray, size: int, name: str) -> np.ndarray:
    if new is not None:
        new = np.asarray(new, dtype=bool)
        if new.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), not {new.shape}")
        return new
    grown = np.zeros(size, bool)
    grown[: len(old)] = old
    return grown


def _run(
    state: MathState,
    codes: sp.csr_matrix,
    first: np.ndarray,
    changes: dict,
    matrix_seconds: float,
    touched: np.ndarray | None,
) -> tuple[MathResult, MathState]:
    """The pipeline after the matrix; ``touched`` are the participants whose votes changed
    (None: everything may have changed, so nothing incremental is reused).

    BLAS runs on one thread: its multi-threaded reductions would make the last bits of the
    result depend on the machine's core count, and on a busy machine its threads spin for
    nothing (a 1,000 x 1,000 eigenproblem took 10 s on two contended threads, 0.12 s on one).
    """
    with _blas().limit(limits=1, user_api="blas"):
        return _pipeline(state, codes, first, changes, matrix_seconds, touched)


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's thread pools, inspected once (a fresh inspection reads /proc each time)."""
    return ThreadpoolController()


def _pipeline(
    state: MathState,
    codes: sp.csr_matrix,
    first: np.ndarray,
    changes: dict,
    matrix_seconds: float,
    touched: np.ndarray | None,
) -> tuple[MathResult, MathState]:
    params = state.params
    n_rows, n_cols = codes.shape
    meta = _mask(changes.get("meta"), state.meta, n_cols, "meta")
    rejected = _mask(changes.get("moderated_out"), state.moderated_out, n_cols, "moderated_out")
    moderated_out = rejected | meta
    banned = _mask(changes.get("banned"), state.banned, n_rows, "banned")
    timings = {"matrix": matrix_seconds}
    clock = _Clock(timings)
    rows = first_vote_order(first)

    in_conv = matrix.in_conversation(
        codes,
        previous=state.in_conversation,
        banned=banned,
        min_votes=params.min_votes,
        min_participants=params.min_participants,
        order=rows,
    )
    clock.lap("in_conversation")

    covotes = moments.update(state.moments, state.codes, codes, ~state.banned, ~banned, touched)
    clock.lap("moments")
    fit = pca.pca(
        codes,
        active_statements=~moderated_out,
        active_participants=~banned,
        previous=state.components,
        random_state=params.random_state,
        moments=covotes,
        count_hidden=params.projection_scale == "polis",
    )
    clock.lap("pca")
    positions = pca.project_participants(fit)
    voted = (matrix.vote_counts(codes) > 0) & ~banned
    positions[~voted] = np.nan
    statement_xy, extremity = pca.project_statements(fit)
    clustered = rows[in_conv[rows]]  # in the order they first voted
    if params.reducer == "umap":
        embedded = umap_positions(
            fit.centred(), pca.sparsity_scale(fit), np.flatnonzero(voted), params.random_state
        )
        if embedded is not None:
            positions[voted] = embedded
    clock.lap("projection")

    previous_base = np.full(n_rows, -1, np.int32)
    if state.base_labels is not None:
        previous_base[: len(state.base_labels)] = state.base_labels
    previous = Previous(
        base_centres=state.base_centres,
        base_ids=state.base_ids,
        group_centres=state.group_centres,
        group_labels=state.group_labels,
        group_ids=state.group_ids,
        smoother=state.smoother,
    )
    groups = cluster(positions[clustered], params, previous, previous_base[clustered])
    base_of = np.full(n_rows, -1, np.int32)
    base_of[clustered] = groups.base_labels
    group_of = np.full(n_rows, -1, np.int32)
    group_of[clustered] = groups.point_groups()
    clock.lap("clustering")

    k = groups.k
    group_tallies, everyone = stats.tally_with_population(codes, group_of, k, ~banned)
    eligible = ~moderated_out
    group_stat = stats.group_stats(group_tallies)
    repness = [
        stats.representative(group_stat, g, eligible, count=params.repness_count) for g in range(k)
    ]
    consensus = stats.majority(everyone, eligible, count=params.consensus_count)
    gic = np.where(eligible, stats.group_informed_consensus(group_tallies), np.nan)
    priority = stats.priority(group_tallies, extremity, meta)
    clock.lap("statistics")
    timings["total"] = sum(timings.values())

    result = MathResult(
        n_participants=int(voted.sum()),
        n_statements=n_cols,
        n_votes=int(codes.nnz),
        in_conversation=in_conv,
        x=positions[:, 0],
        y=positions[:, 1],
        base_cluster=base_of,
        base_centres=groups.base_centres,
        base_sizes=groups.base_sizes,
        group=group_of,
        k=k,
        best_k=groups.best_k,
        silhouettes=groups.silhouettes,
        group_tallies=group_tallies,
        repness=repness,
        consensus=consensus,
        group_informed_consensus=gic,
        priority=priority,
        components=fit.components,
        means=fit.means,
        statement_xy=statement_xy,
        extremity=extremity,
        moderated_out=moderated_out,
        timings=timings,
    )
    new_state = replace(
        state,
        codes=codes,
        moderated_out=rejected,
        meta=meta,
        banned=banned,
        in_conversation=in_conv,
        components=fit.components,
        base_centres=groups.base_centres,
        moments=covotes,
        base_labels=base_of,
        group_labels=groups.group_labels,
        group_centres=groups.group_centres,
        base_ids=groups.base_ids,
        group_ids=groups.group_ids,
        participant_first_ms=first,
        smoother=groups.smoother,
        n_updates=state.n_updates + 1,
    )
    return result, new_state


class _Clock:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self.last
        self.last = now
