"""Base clusters, opinion groups for k = 2..max_k, silhouette, and the k smoother."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .kmeans import kmeans, silhouette
from .params import MathParams


@dataclass(frozen=True)
class Smoother:
    """Pol.is's buffer on k: a new best k is published once it has won enough updates in a row."""

    current: int | None = None
    candidate: int | None = None
    wins: int = 0

    def step(self, best: int, available: set[int], needed: int) -> Smoother:
        """The smoother after an update whose best k is ``best``."""
        if self.current is None or self.current not in available:
            return Smoother(best)
        if best == self.current:
            return Smoother(best)
        wins = self.wins + 1 if best == self.candidate else 1
        if wins >= needed:
            return Smoother(best)
        return replace(self, candidate=best, wins=wins)


@dataclass
class Clustering:
    """Where the in-conversation participants fall.

    Attributes
    ----------
    base_labels : ndarray of shape (n_points,)
        Base cluster of each clustered point.
    base_centres : ndarray of shape (n_base, 2)
    base_sizes : ndarray of shape (n_base,)
    group_of_base : ndarray of shape (n_base,)
        Group of each base cluster under the published k.
    group_centres : dict of k -> ndarray of shape (k, 2)
        Group centres of every k tried (they warm-start the next update).
    group_labels : dict of k -> ndarray of shape (n_base,)
        Each base cluster's group for every k tried (the members of the next warm start).
    silhouettes : dict of k -> float
    best_k : int
        This update's best k by silhouette.
    smoother : Smoother
        Holds the published k (``smoother.current``).
    """

    base_labels: np.ndarray
    base_centres: np.ndarray
    base_sizes: np.ndarray
    group_of_base: np.ndarray
    group_centres: dict[int, np.ndarray] = field(default_factory=dict)
    group_labels: dict[int, np.ndarray] = field(default_factory=dict)
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


def cluster(
    points: np.ndarray,
    params: MathParams,
    *,
    base_init: np.ndarray | None,
    group_init: dict[int, np.ndarray],
    smoother: Smoother,
    base_members: np.ndarray | None = None,
    group_members: dict[int, np.ndarray] | None = None,
) -> Clustering:
    """Base clusters, then groups over the base-cluster centres weighted by their sizes.

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
        Positions of the in-conversation participants.
    params : MathParams
    base_init, base_members, group_init, group_members, smoother
        What the previous update left: base centres and each point's previous base cluster
        (-1 for newcomers), group centres and each previous base cluster's group for every k,
        and the k smoother.
    """
    max_iter, threshold = params.kmeans_max_iter, params.kmeans_threshold
    base = kmeans(
        points,
        params.n_base_clusters,
        init=base_init,
        init_labels=base_members,
        max_iter=max_iter,
        threshold=threshold,
    )
    n_base = len(base.centres)
    if n_base < 2:
        return Clustering(
            base.labels,
            base.centres,
            base.weights,
            np.zeros(n_base, np.int32),
            smoother=Smoother(1 if n_base else None),
            best_k=n_base,
        )
    max_k = min(params.max_groups, 2 + n_base // 12, n_base)
    labels_by_k: dict[int, np.ndarray] = {}
    centres_by_k: dict[int, np.ndarray] = {}
    scores: dict[int, float] = {}
    for k in range(2, max_k + 1):
        previous = (group_members or {}).get(k)
        members = None
        if previous is not None:
            # A base cluster's previous group, through the previous base cluster it came from.
            came_from = np.where(base.origin < len(previous), base.origin, -1)
            members = np.where(came_from >= 0, previous[np.maximum(came_from, 0)], -1)
        groups = kmeans(
            base.centres,
            k,
            weights=base.weights,
            init=group_init.get(k),
            init_labels=members,
            max_iter=max_iter,
            threshold=threshold,
        )
        labels_by_k[k], centres_by_k[k] = groups.labels, groups.centres
        scores[k] = silhouette(base.centres, groups.labels)
    best = max(scores, key=lambda k: (scores[k], k))  # a tie goes to the larger k, as in Pol.is
    smoother = smoother.step(best, set(scores), params.k_smoother_updates)
    assert smoother.current is not None  # step always publishes a k
    return Clustering(
        base.labels,
        base.centres,
        base.weights,
        labels_by_k[smoother.current],
        centres_by_k,
        labels_by_k,
        scores,
        best,
        smoother,
    )
