"""Weighted k-means in the Pol.is manner: deterministic initialisation and warm starts.

Pol.is initialises from the first k distinct points, or from the previous update's clusters
(``clean-start-clusters``: each re-centred on its members, empty ones dropped, then the point
farthest from its centre split off until there are k again), drops a cluster as soon as it has
no point, and stops when the sorted centres stop moving. The iterations run compiled
(``_kmeans_kernels``) with Hamerly's distance bounds, so that after the first iterations only
the points near a boundary are measured again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kmeans_kernels as kernels


@dataclass
class KMeansResult:
    """Centres of shape (k, 2), the label of each point and each cluster's total weight.

    Clusters are in the order of their ``ids`` (Pol.is's cluster ids: a cold start numbers its
    clusters 0, 1, ...; a warm start keeps the previous ids and gives a new cluster the next
    one). ``origin[c]`` is the previous cluster (an index into ``init``) that cluster c
    continues, -1 for a new one.
    """

    centres: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    n_iter: int
    origin: np.ndarray
    ids: np.ndarray


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
    init_ids: np.ndarray | None = None,
    max_iter: int = 100,
    threshold: float = 0.01,
) -> KMeansResult:
    """Cluster ``points`` into at most ``k`` groups, as Pol.is's ``clusters/kmeans`` does.

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
        In Pol.is's row order: it decides the cold start and the ties of a warm start.
    k : int
        Wanted number of clusters; fewer when there are fewer distinct points.
    weights : ndarray of shape (n_points,), optional
        Point weights (member counts when clustering base-cluster centres).
    init : ndarray of shape (n_init, 2), optional
        The previous update's centres, to warm-start from; otherwise the first k distinct
        points (a cold start).
    init_labels : ndarray of shape (n_points,), optional
        Each point's previous cluster (an index into ``init``; -1 for a newcomer): the members
        that Pol.is's ``clean-start-clusters`` re-centres each previous cluster on. Without
        them, each point counts as a member of the previous centre nearest to it.
    init_ids : ndarray of shape (n_init,), optional
        The previous clusters' ids (default 0, 1, ...).
    max_iter : int
        Pol.is's ``max-iters``: at most ``max_iter + 1`` assignment steps.
    threshold : float
        Stop once the sorted centres moved less than this.

    Returns
    -------
    KMeansResult, its clusters sorted by id, labels numbered densely in that order.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    weights = np.ascontiguousarray(weights)
    if len(points) == 0:
        return KMeansResult(
            np.empty((0, 2)),
            np.full(0, -1, np.int32),
            np.empty(0),
            0,
            np.empty(0, np.int64),
            np.empty(0, np.int64),
        )
    if init is None or len(init) == 0:
        centres = first_distinct(points, k)
        ids = np.arange(len(centres), dtype=np.int64)
        origin = np.full(len(centres), -1, np.int64)
        guess = np.full(len(points), -1, np.int32)
    else:
        previous = np.ascontiguousarray(init, dtype=np.float64)
        if init_labels is None or not (np.asarray(init_labels) >= 0).any():
            init_labels = kernels.assign(points, previous)
        init_ids = np.arange(len(previous)) if init_ids is None else init_ids
        possible = len(first_distinct(points, k))  # min(k, distinct points), cheaply
        centres, guess, ids, origin = kernels.clean_start(
            points,
            weights,
            np.ascontiguousarray(init_labels, dtype=np.int32),
            np.ascontiguousarray(init_ids, dtype=np.int64),
            possible,
        )
    labels, centres, kept, n_iter = kernels.lloyd(
        points, weights, centres, max_iter, threshold, guess
    )
    ids, origin = ids[kept], origin[kept]
    totals = np.bincount(labels, weights=weights, minlength=len(centres))
    by_id = np.argsort(ids, kind="stable")
    if (by_id != np.arange(len(ids))).any():
        renumber = np.empty_like(by_id)
        renumber[by_id] = np.arange(len(by_id))
        labels = renumber[labels].astype(np.int32)
        centres, totals, ids, origin = centres[by_id], totals[by_id], ids[by_id], origin[by_id]
    return KMeansResult(centres, labels, totals, n_iter, origin, ids)


def _sq_dists(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (block**2).sum(axis=1)[:, None] - 2.0 * block @ centres.T + (centres**2).sum(axis=1)
    return np.maximum(d, 0.0)


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Plain mean silhouette of ``points`` (a few hundred at most) under ``labels``.

    A point alone in its cluster scores 0 (so a single point scores 0, as in Pol.is, which then
    still records k = 2); several points in one cluster score -1.
    """
    groups = np.unique(labels)
    if len(groups) < 2:
        return 0.0 if len(points) == 1 else -1.0
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
