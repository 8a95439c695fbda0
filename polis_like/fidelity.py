"""How alike our results are to what Pol.is's own math computes from the same votes.

A *reference* is one JSON document of Pol.is's math on a conversation (the format of
``tests/fixtures/polis-math/``, made by a line-by-line re-implementation of Pol.is's Clojure
math; its README says how): the groups, the representative statements, the majority lists and
group-informed consensus, for all the votes at once (static) or replayed in time order. The
golden tests and ``benchmarks/fidelity.py`` both compare through :func:`compare`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from .conversation import Conversation
from .math import MathResult

MODES = ("static", "replay")


@dataclass(frozen=True)
class Reference:
    """Pol.is's math on one conversation (export ids as strings)."""

    mode: str
    k: int
    groups: dict[str, int]
    repness: dict[str, list[str]]
    consensus: dict[str, list[str]]
    gac: dict[str, float]
    window_s: float | None
    ticks: int | None

    @classmethod
    def read(cls, path: Path) -> Reference:
        """Read a reference document; ``ValueError`` naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                mode=data["mode"],
                k=int(data["k"]),
                groups={str(p): int(g) for p, g in data["groups"].items()},
                repness={str(g): [str(s) for s in ss] for g, ss in data["repness"].items()},
                consensus={
                    side: [str(s) for s in data["consensus"][side]]
                    for side in ("agree", "disagree")
                },
                gac={str(s): float(v) for s, v in data["gac"].items()},
                window_s=data.get("window_s"),
                ticks=data.get("ticks"),
            )
        except (OSError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{path}: not a Pol.is math reference ({error})") from error


def reference_path(folder: Path, name: str, mode: str) -> Path:
    """Where the reference of conversation ``name`` in ``mode`` lives in ``folder``."""
    return Path(folder) / f"{name}.{mode}.json"


def labels_of(conversation: Conversation, groups: dict[str, int]) -> np.ndarray:
    """Group of each of the conversation's participants from ``{export id: group}`` (-1: none)."""
    return np.array([groups.get(pid, -1) for pid in conversation.participant_ids], dtype=np.int64)


def compare_groups(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """How alike two groupings of the same participants are (-1 = not clustered).

    Returns ``k`` and ``k_polis`` (numbers of groups), ``ari`` (adjusted Rand index over the
    participants both cluster; NaN when none), ``jaccard`` (overlap of the clustered sets) and
    the sizes ``clustered``, ``clustered_polis``.
    """
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise ValueError(f"groupings differ in length: {ours.shape} and {theirs.shape}")
    mine, polis = ours >= 0, theirs >= 0
    both = mine & polis
    either = int((mine | polis).sum())
    ari = adjusted_rand_score(theirs[both], ours[both]) if both.any() else float("nan")
    return {
        "k": len(np.unique(ours[mine])),
        "k_polis": len(np.unique(theirs[polis])),
        "ari": float(ari),
        "jaccard": int(both.sum()) / either if either else 1.0,
        "clustered": int(mine.sum()),
        "clustered_polis": int(polis.sum()),
    }


def matched_groups(ours: np.ndarray, theirs: np.ndarray, k: int) -> dict[int, int]:
    """Each of our groups 0..k-1 and the reference group most of its members are in."""
    matched = {}
    for group in range(k):
        labels, counts = np.unique(theirs[(ours == group) & (theirs >= 0)], return_counts=True)
        if len(labels):
            matched[group] = int(labels[np.argmax(counts)])
    return matched


def compare(result: MathResult, conversation: Conversation, reference: Reference) -> dict:
    """Our result against Pol.is's on the same conversation.

    Returns :func:`compare_groups`'s figures and ``consensus_same`` (both majority lists
    identical, in order), ``repness_same`` and ``repness_groups`` (of our groups matched to a
    reference group, how many have the same representative statements in the same order),
    ``repness_differ`` (those that do not: ``[ours, Pol.is's]`` statement ids) and ``gac_max_diff``
    (the largest difference in group-informed consensus over the statements both give one).
    """
    ids = [statement.id for statement in conversation.statements]
    theirs = labels_of(conversation, reference.groups)
    row = compare_groups(result.group, theirs)
    consensus = {
        side: [ids[m.statement] for m in result.consensus[side]] for side in ("agree", "disagree")
    }
    row["consensus_same"] = consensus == reference.consensus
    same, differ = 0, []
    matched = matched_groups(result.group, theirs, result.k)
    for group, their_group in matched.items():
        mine = [ids[r.statement] for r in result.repness[group]]
        expected = reference.repness.get(str(their_group), [])
        if mine == expected:
            same += 1
        else:
            differ.append([mine, expected])
    row.update(repness_same=same, repness_groups=len(matched), repness_differ=differ)
    index = conversation.statement_index()
    gaps = [
        abs(float(result.group_informed_consensus[index[sid]]) - value)
        for sid, value in reference.gac.items()
        if sid in index and np.isfinite(result.group_informed_consensus[index[sid]])
    ]
    row["gac_max_diff"] = max(gaps) if gaps else float("nan")
    return row
