"""The latest-vote matrix and the in-conversation rule.

The matrix is a CSR matrix of shape (n_participants, n_statements) holding vote *codes*:
``vote + 2``, so agree = 3, pass = 2, disagree = 1, and a missing vote is an implicit 0.
Coding the votes keeps a pass (a real 0) distinct from a missing cell, so ordinary sparse
arithmetic never confuses the two.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..conversation import VoteEvents

CODE_OFFSET = 2
#: From this many events, the latest votes are found by a compiled pass of two counting sorts
#: (O(n)) instead of numpy's argsort of the keys; the same events, in the same order.
COUNTING_SORT_MIN = 1 << 20
AGREE_CODE, PASS_CODE, DISAGREE_CODE = 3, 2, 1


def empty_votes(n_participants: int, n_statements: int) -> sp.csr_matrix:
    """An all-missing vote matrix."""
    return sp.csr_matrix((n_participants, n_statements), dtype=np.int8)


def latest_votes(events: VoteEvents, n_participants: int, n_statements: int) -> sp.csr_matrix:
    """Build the latest-vote matrix from vote events, in any order (see :func:`latest_index`).

    Parameters
    ----------
    events : VoteEvents
        Vote events with participant indices < n_participants, statement indices < n_statements.
    n_participants, n_statements : int
        The matrix shape.

    Returns
    -------
    codes : csr_matrix of shape (n_participants, n_statements), int8 vote codes
    """
    _check_events(events, n_participants, n_statements)
    if len(events) == 0:
        return empty_votes(n_participants, n_statements)
    shape = (n_participants, n_statements)
    if _one_per_cell_in_order(events, n_statements):  # the worker reads them so: nothing to sort
        order: np.ndarray | slice = slice(None)
    elif len(events) >= COUNTING_SORT_MIN:
        _, indptr, cols, data = _counted(events, n_participants, n_statements)
        return sp.csr_matrix((data, cols, indptr), shape=shape)
    else:
        order = _latest(events, n_statements)
    rows = events.participant[order]
    indptr = np.zeros(n_participants + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_participants), out=indptr[1:])
    data = (events.vote[order] + CODE_OFFSET).astype(np.int8)
    return sp.csr_matrix((data, events.statement[order], indptr), shape=shape)


def _one_per_cell_in_order(events: VoteEvents, n_statements: int) -> bool:
    """Whether the events are sorted by (participant, statement), one at most a cell: then
    each is the vote that counts, in the order of the matrix (what :func:`latest_index`
    keeps)."""
    key = events.participant.astype(np.int64) * n_statements + events.statement
    return bool(np.all(key[1:] > key[:-1]))


def latest_index(events: VoteEvents) -> np.ndarray:
    """The vote that counts for each (participant, statement): the one rule of polis-like.

    A participant's vote with the largest timestamp wins; equal timestamps are settled by the
    vote value (the larger wins), so the result does not depend on the order of the events.
    The math, the worker's reading of new events and the import all use this.

    Returns
    -------
    index : ndarray of shape (n_kept,), int64
        Indices into ``events`` of the votes that count, sorted by (participant, statement).
    """
    if len(events) == 0:
        return np.empty(0, np.int64)
    return _latest(events, int(events.statement.max()) + 1).astype(np.int64, copy=False)


def _latest(events: VoteEvents, n_statements: int) -> np.ndarray:
    """:func:`latest_index`, for statement indices below ``n_statements``."""
    if len(events) >= COUNTING_SORT_MIN:
        return _counted(events, int(events.participant.max()) + 1, n_statements)[0]
    key = events.participant.astype(np.int64) * n_statements + events.statement
    order = np.argsort(key, kind="stable")
    keys = key[order]
    run_end = np.ones(len(keys), dtype=bool)
    run_end[:-1] = keys[1:] != keys[:-1]
    if not run_end.all():
        order = _settle_repeats(events, keys, order, run_end)
    return order


def _settle_repeats(
    events: VoteEvents, keys: np.ndarray, order: np.ndarray, run_end: np.ndarray
) -> np.ndarray:
    """Keep one event per (participant, statement): the latest, then the largest vote."""
    run_start = np.ones(len(keys), dtype=bool)
    run_start[1:] = run_end[:-1]
    single = run_start & run_end
    repeated = order[~single]
    # Only the repeated keys need the full (key, time, vote) order; they are few.
    sub = np.lexsort((events.vote[repeated], events.timestamp_ms[repeated], keys[~single]))
    repeated = repeated[sub]
    rep_keys = keys[~single]  # sorted already, and unchanged by the in-key reorder
    last = np.ones(len(repeated), dtype=bool)
    last[:-1] = rep_keys[1:] != rep_keys[:-1]
    kept = np.concatenate([order[single], repeated[last]])
    kept_keys = np.concatenate([keys[single], rep_keys[last]])
    return kept[np.argsort(kept_keys, kind="stable")]


def _counted(
    events: VoteEvents, n_participants: int, n_statements: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_latest` by the compiled counting sorts, with the CSR arrays of its matrix."""
    from . import _sparse_kernels as kernels  # numba: loaded by the large case only

    return kernels.latest_order(
        events.participant,
        events.statement,
        events.timestamp_ms,
        events.vote,
        n_participants,
        n_statements,
        CODE_OFFSET,
    )


def _check_events(events: VoteEvents, n_participants: int, n_statements: int) -> None:
    if len(events) == 0:
        return
    if events.participant.min() < 0 or events.participant.max() >= n_participants:
        raise ValueError("a vote event names a participant outside the matrix")
    if events.statement.min() < 0 or events.statement.max() >= n_statements:
        raise ValueError("a vote event names a statement outside the matrix")
    if events.vote.min() < -1 or events.vote.max() > 1:
        raise ValueError("votes must be -1, 0 or +1")


def resize(codes: sp.csr_matrix, n_participants: int, n_statements: int) -> sp.csr_matrix:
    """The same votes in a matrix grown to the given shape (it never shrinks)."""
    rows, cols = codes.shape
    if n_participants < rows or n_statements < cols:
        raise ValueError("the vote matrix cannot shrink: participants and statements are kept")
    if (n_participants, n_statements) == (rows, cols):
        return codes
    indptr = np.concatenate([codes.indptr, np.full(n_participants - rows, codes.indptr[-1])])
    return sp.csr_matrix((codes.data, codes.indices, indptr), shape=(n_participants, n_statements))


def merge_votes(codes: sp.csr_matrix, events: VoteEvents) -> sp.csr_matrix:
    """Apply new vote events, all later than those already in ``codes``, to the matrix.

    Costs one pass over the stored votes plus the new ones; nothing is re-read.
    """
    if len(events) == 0:
        return codes
    new = latest_votes(events, *codes.shape)
    replaced = codes.multiply(new.astype(bool)).tocsr()
    merged = (codes - replaced + new).tocsr()
    merged.data = merged.data.astype(np.int8, copy=False)
    merged.sort_indices()
    return merged


def vote_counts(codes: sp.csr_matrix) -> np.ndarray:
    """Number of votes (passes included) of each participant."""
    return np.diff(codes.indptr)


def in_conversation(
    codes: sp.csr_matrix,
    *,
    previous: np.ndarray | None,
    banned: np.ndarray,
    min_votes: int,
    min_participants: int,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """Who is clustered: Pol.is's rule, sticky.

    A participant is in once their vote count reaches ``min(min_votes, n voted statements)``;
    while fewer than ``min_participants`` are in, the top voters are added (among equal counts,
    the earlier in ``order``, default index order: Pol.is's stable sort over its rows); once
    in, always in (until banned).

    Returns
    -------
    mask : ndarray of shape (n_participants,), bool
    """
    counts = vote_counts(codes)
    n_voted_statements = int(np.count_nonzero(np.bincount(codes.indices, minlength=codes.shape[1])))
    threshold = max(1, min(min_votes, n_voted_statements))
    eligible = (counts > 0) & ~banned
    mask = eligible & (counts >= threshold)
    if previous is not None:
        mask[: len(previous)] |= previous & eligible[: len(previous)]
    missing = min(min_participants, int(eligible.sum())) - int(mask.sum())
    if missing > 0:
        # Top voters first; among equal counts, the earlier participant.
        order = np.arange(len(counts)) if order is None else order
        candidates = order[(eligible & ~mask)[order]]
        top = candidates[np.argsort(-counts[candidates], kind="stable")[:missing]]
        mask[top] = True
    return mask
