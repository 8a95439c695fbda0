"""Compiled passes over the CSR vote matrix (numba; serial, so deterministic)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def tally(
    indptr: np.ndarray,
    indices: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    counted: np.ndarray,
    n_groups: int,
    n_cols: int,
    agree_code: int,
    disagree_code: int,
):
    """Agree, disagree and seen counts per (label, column), shape (n_groups + 1, n_cols).

    Row ``g`` counts the rows labelled g (-1: none); the last row counts every row with
    ``counted`` set, whatever its label: the whole population in the same pass.
    """
    agree = np.zeros((n_groups + 1, n_cols), np.int64)
    disagree = np.zeros((n_groups + 1, n_cols), np.int64)
    seen = np.zeros((n_groups + 1, n_cols), np.int64)
    for i in range(indptr.shape[0] - 1):
        g = labels[i]
        whole = counted[i]
        if g < 0 and not whole:
            continue
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            is_agree = codes[p] == agree_code
            is_disagree = codes[p] == disagree_code
            if g >= 0:
                seen[g, j] += 1
                agree[g, j] += is_agree
                disagree[g, j] += is_disagree
            if whole:
                seen[n_groups, j] += 1
                agree[n_groups, j] += is_agree
                disagree[n_groups, j] += is_disagree
    return agree, disagree, seen


@njit(cache=True, nogil=True)
def add_moments(
    indptr: np.ndarray,
    indices: np.ndarray,
    codes: np.ndarray,
    rows: np.ndarray,
    sign: int,
    code_offset: int,
    packed: np.ndarray,
) -> None:
    """Add (sign = 1) or remove (sign = -1) the given rows' co-vote moments, in place.

    For statements a <= b both voted on by a row with votes v_a, v_b (indices sorted in rows),
    ``packed[a, b]`` accumulates (v_a v_b, 1, v_a, v_b): the four numbers share a cache line. All
    are integers, so any order of updates gives the same array.
    """
    for r in range(rows.shape[0]):
        i = rows[r]
        start = indptr[i]
        stop = indptr[i + 1]
        for p in range(start, stop):
            a = indices[p]
            va = codes[p] - code_offset
            for q in range(p, stop):
                b = indices[q]
                vb = codes[q] - code_offset
                cell = packed[a, b]
                cell[0] += sign * va * vb
                cell[1] += sign
                cell[2] += sign * va
                cell[3] += sign * vb


@njit(cache=True, nogil=True)
def project(
    indptr: np.ndarray,
    indices: np.ndarray,
    codes: np.ndarray,
    code_offset: int,
    active_rows: np.ndarray,
    active_cols: np.ndarray,
    means: np.ndarray,
    components: np.ndarray,
):
    """Each row's ``sum_j (v_ij - mean_j) * components[:, j]`` over its active votes, and the
    number of those votes; inactive rows get zeros. Shapes (n_rows, 2) and (n_rows,)."""
    n_rows = indptr.shape[0] - 1
    out = np.zeros((n_rows, 2))
    counts = np.zeros(n_rows, np.int64)
    for i in range(n_rows):
        if not active_rows[i]:
            continue
        x = 0.0
        y = 0.0
        c = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if active_cols[j]:
                d = (codes[p] - code_offset) - means[j]
                x += d * components[0, j]
                y += d * components[1, j]
                c += 1
        out[i, 0] = x
        out[i, 1] = y
        counts[i] = c
    return out, counts


@njit(cache=True, nogil=True)
def latest_order(
    participant: np.ndarray,
    statement: np.ndarray,
    timestamp: np.ndarray,
    vote: np.ndarray,
    n_participants: int,
    n_statements: int,
    code_offset: int,
):
    """The events that count, one per (participant, statement), in that order: O(n).

    Two stable counting sorts (by statement, then by participant) give the order of a stable
    argsort of ``participant * n_statements + statement``; in each run of one key the event
    with the largest (timestamp, vote) is kept, the later of equals in that order: what
    ``matrix._settle_repeats`` keeps. Returns their indices, and the CSR arrays of their
    matrix (indptr over ``n_participants`` rows, statement indices, vote codes).
    """
    n = participant.shape[0]
    starts = np.zeros(n_statements + 1, np.int64)
    for i in range(n):
        starts[statement[i] + 1] += 1
    for j in range(n_statements):
        starts[j + 1] += starts[j]
    by_statement = np.empty(n, np.int64)
    for i in range(n):
        j = statement[i]
        by_statement[starts[j]] = i
        starts[j] += 1
    starts = np.zeros(n_participants + 1, np.int64)
    for i in range(n):
        starts[participant[i] + 1] += 1
    for p in range(n_participants):
        starts[p + 1] += starts[p]
    order = np.empty(n, np.int64)
    for k in range(n):
        i = by_statement[k]
        p = participant[i]
        order[starts[p]] = i
        starts[p] += 1
    indptr = np.zeros(n_participants + 1, np.int64)
    cols = np.empty(n, np.int32)
    codes = np.empty(n, np.int8)
    kept = 0
    k = 0
    while k < n:
        best = order[k]
        p = participant[best]
        j = statement[best]
        k += 1
        while k < n and participant[order[k]] == p and statement[order[k]] == j:
            i = order[k]
            if timestamp[i] > timestamp[best] or (
                timestamp[i] == timestamp[best] and vote[i] >= vote[best]
            ):
                best = i
            k += 1
        order[kept] = best
        cols[kept] = j
        codes[kept] = vote[best] + code_offset
        indptr[p + 1] += 1
        kept += 1
    for p in range(n_participants):
        indptr[p + 1] += indptr[p]
    return order[:kept].copy(), indptr, cols[:kept].copy(), codes[:kept].copy()
