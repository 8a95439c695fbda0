"""Base clusters, opinion groups for k = 2..max_k, silhouette, and the k smoother."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kmeans import kmeans, silhouette
from .params import MathParams


@dataclass(frozen=True)
class Smoother:
    """Pol.is's buffer on k (``group-k-smoother``): a new best k is published once it has been
    the best this many updates in a row; the very first best k is published at once."""

    last_k: int | None = None
    last_k_count: int = 0
    smoothed_k: int | None = None

    @property
    def current(self) -> int | None:
        """The published k."""
        return self.smoothed_k

    def step(self, best: int, needed: int) -> Smoother:
        """The smoother after an update whose best k is ``best``."""
        count = self.last_k_count + 1 if best == self.last_k else 1
        smoothed = best if count >= needed or self.smoothed_k is None else self.smoothed_k
        return Smoother(best, count, smoothed)


@dataclass
class Clustering:
    """Where the in-conversation participants fall.

    Attributes
    ----------
    base_labels : ndarray of shape (n_points,)
        Base cluster of each clustered point.
    base_centres : ndarray of shape (n_base, 2)
    base_sizes : ndarray of shape (n_base,)
    base_ids : ndarray of shape (n_base,)
        Pol.is's ids of the base clusters (stable from one update to the next).
    group_of_base : ndarray of shape (n_base,)
        Group of each base cluster under the published k.
    group_centres : dict of k -> ndarray of shape (k, 2)
        Group centres of every k tried (they warm-start the next update).
    group_labels : dict of k -> ndarray of shape (n_base,)
        Each base cluster's group for every k tried (the members of the next warm start).
    group_ids : dict of k -> ndarray of shape (k,)
        The groups' ids for every k tried.
    silhouettes : dict of k -> float
    best_k : int
        This update's best k by silhouette.
    smoother : Smoother
        Holds the published k (``smoother.current``).
    """

    base_labels: np.ndarray
    base_centres: np.ndarray
    base_sizes: np.ndarray
    base_ids: np.ndarray
    group_of_base: np.ndarray
    group_centres: dict[int, np.ndarray] = field(default_factory=dict)
    group_labels: dict[int, np.ndarray] = field(default_factory=dict)
    group_ids: dict[int, np.ndarray] = field(default_factory=dict)
    silhouettes: dict[int, float] = field(default_factory=dict)
    best_k: int = 0
    smoother: Smoother = field(default_factory=Smoother)

    @property
    def k(self) -> int:
        """The number of published groups."""
        return int(self.group_of_base.max()) + 1 if len(self.group_of_base) else 0

    def point_groups(self) -> np.ndarray:
        """Group of each clustered point."""
        return self.group_of_base[self.base_labels]


@dataclass
class Previous:
    """What the previous update's clustering leaves for the next one's warm starts."""

    base_centres: np.ndarray | None = None
    base_ids: np.ndarray | None = None
    group_centres: dict[int, np.ndarray] = field(default_factory=dict)
    group_labels: dict[int, np.ndarray] = field(default_factory=dict)
    group_ids: dict[int, np.ndarray] = field(default_factory=dict)
    smoother: Smoother = field(default_factory=Smoother)


def cluster(
    points: np.ndarray,
    params: MathParams,
    previous: Previous | None = None,
    base_members: np.ndarray | None = None,
) -> Clustering:
    """Base clusters, then groups over the base-cluster centres weighted by their sizes.

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
        Positions of the in-conversation participants, in the order they first voted.
    params : MathParams
    previous : Previous, optional
        The previous update's clusterings and k smoother (none: a cold start).
    base_members : ndarray of shape (n_points,), optional
        Each point's previous base cluster (an index into ``previous.base_centres``; -1 for a
        newcomer).
    """
    previous = previous or Previous()
    base = kmeans(
        points,
        params.n_base_clusters,
        init=previous.base_centres,
        init_labels=base_members,
        init_ids=previous.base_ids,
        max_iter=params.kmeans_max_iter,
        threshold=params.kmeans_threshold,
    )
    n_base = len(base.centres)
    if n_base == 0:
        return Clustering(
            base.labels,
            base.centres,
            base.weights,
            base.ids,
            np.zeros(0, np.int32),
            smoother=previous.smoother,
        )
    # Pol.is tries k = 2 even for a single base cluster (it scores 0 and enters the smoother).
    max_k = min(params.max_groups, 2 + n_base // 12)
    old_base = _index_of(previous.base_ids, base.ids)
    labels_by_k: dict[int, np.ndarray] = {}
    centres_by_k: dict[int, np.ndarray] = {}
    ids_by_k: dict[int, np.ndarray] = {}
    scores: dict[int, float] = {}
    for k in range(2, max_k + 1):
        before = previous.group_labels.get(k)
        members = None
        if before is not None and len(before) and (old_base >= 0).any():
            # A base cluster's previous group: that of the previous base cluster with its id.
            members = np.where(old_base >= 0, before[np.maximum(old_base, 0)], -1)
        groups = kmeans(
            base.centres,
            k,
            weights=base.weights,
            init=previous.group_centres.get(k) if members is not None else None,
            init_labels=members,
            init_ids=previous.group_ids.get(k),
            max_iter=params.group_kmeans_max_iter,
            threshold=params.kmeans_threshold,
        )
        labels_by_k[k], centres_by_k[k], ids_by_k[k] = groups.labels, groups.centres, groups.ids
        scores[k] = silhouette(base.centres, groups.labels)
    best = max(scores, key=lambda k: (scores[k], k))  # a tie goes to the larger k, as in Pol.is
    smoother = previous.smoother.step(best, params.k_smoother_updates)
    # Pol.is would publish nothing when its smoothed k is no longer tried; we publish the best.
    published = smoother.current if smoother.current in labels_by_k else best
    return Clustering(
        base.labels,
        base.centres,
        base.weights,
        base.ids,
        labels_by_k[published],
        centres_by_k,
        labels_by_k,
        ids_by_k,
        scores,
        best,
        smoother,
    )


def _index_of(known: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
    """The index in ``known`` (sorted ids) of each of ``ids``; -1 where absent."""
    if known is None or len(known) == 0:
        return np.full(len(ids), -1, np.int64)
    at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return np.where(known[at] == ids, at, -1)
