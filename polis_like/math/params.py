"""The constants of the Pol.is math, gathered in one frozen parameter object."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: One-sided 90 % critical value of the normal distribution, used by every Pol.is test.
Z_90 = 1.2816

REDUCERS = ("pca", "umap")
PROJECTION_SCALES = ("polis", "visible")


@dataclass(frozen=True, kw_only=True)
class MathParams:
    """Parameters of one conversation's math; the defaults are Pol.is's constants.

    Parameters
    ----------
    reducer : {"pca", "umap"}
        How participants are placed in 2-D before clustering.
    random_state : int
        Seed for every random choice (UMAP, and the ARPACK start vector).
    projection_scale : {"polis", "visible"}
        What the sparsity-aware projection's ``sqrt(n / |V_i|)`` counts: also the moderated-out
        statements that have votes, counted as a 0 vote from everybody (what Pol.is computes,
        default), or only the statements a participant could see (``"visible"``).
    n_base_clusters : int
        Number of base clusters (Pol.is: 100).
    max_groups : int
        Upper bound on the number of opinion groups (Pol.is: 5).
    min_votes : int
        Votes a participant needs to be clustered, capped at the statement count (Pol.is: 7).
    min_participants : int
        The in-conversation set is filled with the top voters up to this size (Pol.is: 15).
    k_smoother_updates : int
        Updates in a row that a new best k must win before it is published (Pol.is: 4).
    kmeans_max_iter : int
        Iteration cap of the base-cluster k-means (Pol.is: 100, so at most 101 steps).
    group_kmeans_max_iter : int
        Iteration cap of the group-level k-means (Pol.is: 20; its configured 100 never reaches
        the k-means, so the default of 20 applies).
    kmeans_threshold : float
        k-means stops once no centre moves more than this (Pol.is: 0.01).
    repness_count : int
        Representative statements per group (Pol.is: 5).
    consensus_count : int
        Statements per majority list (Pol.is: 5).
    """

    reducer: str = "pca"
    random_state: int = 0
    projection_scale: str = "polis"
    n_base_clusters: int = 100
    max_groups: int = 5
    min_votes: int = 7
    min_participants: int = 15
    k_smoother_updates: int = 4
    kmeans_max_iter: int = 100
    group_kmeans_max_iter: int = 20
    kmeans_threshold: float = 0.01
    repness_count: int = 5
    consensus_count: int = 5

    def __post_init__(self) -> None:
        if self.reducer not in REDUCERS:
            raise ValueError(f"reducer must be one of {REDUCERS}, not {self.reducer!r}")
        if self.projection_scale not in PROJECTION_SCALES:
            raise ValueError(
                f"projection_scale must be one of {PROJECTION_SCALES}, "
                f"not {self.projection_scale!r}"
            )
        for name in (
            "n_base_clusters",
            "max_groups",
            "min_votes",
            "min_participants",
            "k_smoother_updates",
            "kmeans_max_iter",
            "group_kmeans_max_iter",
            "repness_count",
            "consensus_count",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.max_groups < 2:
            raise ValueError("max_groups must be at least 2")

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for serialisation)."""
        return asdict(self)
