"""Weighted k-means in the Pol.is manner: deterministic initialisation and warm starts.

Pol.is initialises from the first k distinct points, or from the previous update's centres
(re-centred on today's data, empty clusters dropped, then the point farthest from its centre
split off until there are k again), and stops when no centre moves more than a threshold.
The assignment step keeps Hamerly's distance bounds, so that after the first iterations only
the points near a boundary are measured again: a million points cost a few full passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK = 1 << 15


@dataclass
class KMeansResult:
    """Centres of shape (k, 2), the label of each point and each cluster's total weight."""

    centres: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    n_iter: int


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


def kmeans(points: np.ndarray, k: int, *, weights: np.ndarray | None = None,
           init: np.ndarray | None = None, max_iter: int = 100,
           threshold: float = 0.01) -> KMeansResult:
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
        return KMeansResult(np.empty((0, 2)), np.full(len(points), -1, np.int32), np.empty(0), 0)
    if init is None or len(init) == 0:
        centres = seeds
    else:
        centres = _warm_start(points, weights, np.asarray(init, dtype=np.float64), k)
    labels, upper, lower = _assign_all(points, centres)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new = _means(points, weights, labels, centres)
        moved = np.sqrt(((new - centres) ** 2).sum(axis=1))
        centres = new
        if moved.max() <= threshold:
            break
        _reassign(points, centres, labels, upper, lower, moved)
    return _drop_empty(centres, labels, weights, n_iter)


def _warm_start(points: np.ndarray, weights: np.ndarray, previous: np.ndarray,
                k: int) -> np.ndarray:
    """Previous centres re-centred on today's points, empty ones dropped, split back up to k."""
    labels, _, _ = _assign_all(points, previous)
    counts = np.bincount(labels, minlength=len(previous))
    centres = _means(points, weights, labels, previous)[counts > 0][:k]
    if len(centres) >= k:
        return centres
    nearest = np.full(len(points), np.inf)
    for start in range(0, len(points), _CHUNK):
        block = points[start: start + _CHUNK]
        nearest[start: start + _CHUNK] = _sq_dists(block, centres).min(axis=1)
    extra = []
    while len(centres) + len(extra) < k:
        far = int(np.argmax(nearest))
        if nearest[far] <= 0.0:
            break
        extra.append(points[far])
        np.minimum(nearest, ((points - points[far]) ** 2).sum(axis=1), out=nearest)
    return np.vstack([centres, *extra]) if extra else centres


def _sq_dists(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (block**2).sum(axis=1)[:, None] - 2.0 * block @ centres.T + (centres**2).sum(axis=1)
    return np.maximum(d, 0.0)


def _two_nearest(block: np.ndarray, centres: np.ndarray):
    d = _sq_dists(block, centres)
    rows = np.arange(len(block))
    best = np.argmin(d, axis=1)
    first = d[rows, best]
    if centres.shape[0] > 1:
        d[rows, best] = np.inf
        second = d.min(axis=1)
    else:
        second = np.full(len(block), np.inf)
    return best.astype(np.int32), np.sqrt(first), np.sqrt(second)


def _assign_all(points: np.ndarray, centres: np.ndarray):
    n = len(points)
    labels = np.empty(n, np.int32)
    upper = np.empty(n)
    lower = np.empty(n)
    for start in range(0, n, _CHUNK):
        stop = start + _CHUNK
        labels[start:stop], upper[start:stop], lower[start:stop] = _two_nearest(
            points[start:stop], centres)
    return labels, upper, lower


def _reassign(points, centres, labels, upper, lower, moved) -> None:
    """Hamerly's step: update the bounds, then measure only the points that may have moved."""
    upper += moved[labels]
    lower -= moved.max()
    if len(centres) > 1:
        gap = _sq_dists(centres, centres)
        np.fill_diagonal(gap, np.inf)
        half_gap = 0.5 * np.sqrt(gap.min(axis=1))
    else:
        half_gap = np.full(1, np.inf)
    suspect = np.flatnonzero(upper > np.maximum(lower, half_gap[labels]))
    if len(suspect) == 0:
        return
    exact = np.sqrt(((points[suspect] - centres[labels[suspect]]) ** 2).sum(axis=1))
    upper[suspect] = exact
    suspect = suspect[exact > np.maximum(lower[suspect], half_gap[labels[suspect]])]
    for start in range(0, len(suspect), _CHUNK):
        idx = suspect[start: start + _CHUNK]
        labels[idx], upper[idx], lower[idx] = _two_nearest(points[idx], centres)


def _means(points, weights, labels, centres) -> np.ndarray:
    """Weighted member means; a cluster with no members keeps its centre."""
    k = len(centres)
    total = np.bincount(labels, weights=weights, minlength=k)
    sx = np.bincount(labels, weights=weights * points[:, 0], minlength=k)
    sy = np.bincount(labels, weights=weights * points[:, 1], minlength=k)
    new = centres.copy()
    filled = total > 0
    new[filled, 0] = sx[filled] / total[filled]
    new[filled, 1] = sy[filled] / total[filled]
    return new


def _drop_empty(centres, labels, weights, n_iter) -> KMeansResult:
    k = len(centres)
    totals = np.bincount(labels, weights=weights, minlength=k)
    counts = np.bincount(labels, minlength=k)
    keep = counts > 0
    if keep.all():
        return KMeansResult(centres, labels, totals, n_iter)
    renumber = np.cumsum(keep) - 1
    return KMeansResult(centres[keep], renumber[labels].astype(np.int32), totals[keep], n_iter)


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
