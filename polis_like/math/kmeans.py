"""Weighted k-means in the Pol.is manner: deterministic initialisation and warm starts.

Pol.is initialises from the first k distinct points, or from the previous update's centres
(re-centred on today's data, empty clusters dropped, then the point farthest from its centre
split off until there are k again), and stops when no centre moves more than a threshold.
The iterations run compiled (``_kmeans_kernels``) with Hamerly's distance bounds, so that after
the first iterations only the points near a boundary are measured again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kmeans_kernels as kernels


@dataclass
class KMeansResult:
    """Centres of shape (k, 2), the label of each point and each cluster's total weight.

    ``origin[c]`` is the previous cluster that cluster c was warm-started from (-1: none).
    """

    centres: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    n_iter: int
    origin: np.ndarray


def first_distinct(points: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` distinct rows of ``points``, in order (Pol.is's cold start).

    Fewer when there are fewer distinct rows. Looks at growing prefixes, so that a million
    points with many distinct positions cost a glance at the first few hundred.
    """
    size = max(4 * k, 64)
    while True:
        prefix = points[:size]
        _, first = np.unique(prefix, axis=0, return_index=True)
        if len(first) >= k or size >= len(points):
            return prefix[np.sort(first)[:k]].copy()
        size *= 4


def kmeans(
    points: np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    init: np.ndarray | None = None,
    init_labels: np.ndarray | None = None,
    max_iter: int = 100,
    threshold: float = 0.01,
) -> KMeansResult:
    """Cluster ``points`` into at most ``k`` groups.

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
    k : int
        Wanted number of clusters; fewer when there are fewer distinct points.
    weights : ndarray of shape (n_points,), optional
        Point weights (member counts when clustering base-cluster centres).
    init : ndarray of shape (n_init, 2), optional
        Previous centres to warm-start from; otherwise the first k distinct points.
    init_labels : ndarray of shape (n_points,), optional
        Each point's previous cluster (an index into ``init``; -1 for a newcomer). Each previous
        cluster then restarts at its previous members' mean position today, as in Pol.is
        (``clean-start-clusters``); without them, at the mean of today's points nearest to it.
    max_iter : int
        Iteration cap.
    threshold : float
        Stop once no centre moved more than this.

    Returns
    -------
    KMeansResult, with clusters left empty at the end dropped and labels renumbered densely.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    seeds = first_distinct(points, k) if len(points) else np.empty((0, 2))
    k = len(seeds)
    if k == 0:
        return KMeansResult(
            np.empty((0, 2)),
            np.full(len(points), -1, np.int32),
            np.empty(0),
            0,
            np.empty(0, np.int64),
        )
    if init is None or len(init) == 0:
        centres, origin = seeds, np.full(k, -1, np.int64)
    else:
        previous = np.ascontiguousarray(init, dtype=np.float64)
        if init_labels is None or not (np.asarray(init_labels) >= 0).any():
            init_labels = kernels.assign(points, previous)
        centres, origin = _warm_start(points, weights, previous, np.asarray(init_labels), k)
    centres = np.ascontiguousarray(centres)
    labels, n_iter = kernels.lloyd(points, weights, centres, max_iter, threshold)
    return _drop_empty(centres, labels, weights, n_iter, origin)


def _warm_start(
    points: np.ndarray, weights: np.ndarray, previous: np.ndarray, members: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each previous cluster moved to its members' mean; empty ones dropped, identical ones
    merged, then the farthest points split off until there are k. Returns the centres and the
    previous cluster each came from (-1 for a split)."""
    known = members >= 0
    size = len(previous)
    total = np.bincount(members[known], weights=weights[known], minlength=size)
    sx = np.bincount(members[known], weights=weights[known] * points[known, 0], minlength=size)
    sy = np.bincount(members[known], weights=weights[known] * points[known, 1], minlength=size)
    origin = np.flatnonzero(total > 0)
    centres = np.c_[sx[origin] / total[origin], sy[origin] / total[origin]]
    _, first = np.unique(centres, axis=0, return_index=True)
    kept = np.sort(first)[:k]
    centres, origin = centres[kept], origin[kept]
    if len(centres) < k:
        extra = kernels.farthest_splits(points, np.ascontiguousarray(centres), k - len(centres))
        centres = np.vstack([centres, extra])
        origin = np.concatenate([origin, np.full(len(extra), -1, np.int64)])
    return centres, origin


def _sq_dists(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (block**2).sum(axis=1)[:, None] - 2.0 * block @ centres.T + (centres**2).sum(axis=1)
    return np.maximum(d, 0.0)


def _drop_empty(centres, labels, weights, n_iter, origin) -> KMeansResult:
    k = len(centres)
    totals = np.bincount(labels, weights=weights, minlength=k)
    counts = np.bincount(labels, minlength=k)
    keep = counts > 0
    if keep.all():
        return KMeansResult(centres, labels, totals, n_iter, origin)
    renumber = np.cumsum(keep) - 1
    return KMeansResult(
        centres[keep], renumber[labels].astype(np.int32), totals[keep], n_iter, origin[keep]
    )


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Plain mean silhouette of ``points`` (a few hundred at most) under ``labels``.

    A point alone in its cluster scores 0; with fewer than two clusters the score is -1.
    """
    groups = np.unique(labels)
    if len(groups) < 2:
        return -1.0
    dist = np.sqrt(_sq_dists(points, points))
    onehot = labels[:, None] == groups[None, :]
    sizes = onehot.sum(axis=0)
    sums = dist @ onehot
    own = np.searchsorted(groups, labels)
    rows = np.arange(len(points))
    own_size = sizes[own]
    a = np.divide(sums[rows, own], own_size - 1, out=np.zeros(len(points)), where=own_size > 1)
    mean_other = sums / sizes
    mean_other[rows, own] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros(len(points)), where=denom > 0)
    s[own_size == 1] = 0.0
    return float(s.mean())
