"""The documents a worker publishes: the results JSON and the per-participant positions."""

from __future__ import annotations

import io
import math

import numpy as np

from polis_like.math import MathResult
from polis_like.math.stats import MajorityStatement, RepStatement
from polis_like.report import group_name


def _number(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _rep(rep: RepStatement) -> dict:
    return {"statement": rep.statement, "direction": rep.direction,
            "n_success": rep.n_success, "n_trials": rep.n_trials,
            "p_success": _number(rep.p_success), "p_test": _number(rep.p_test),
            "repness": _number(rep.repness), "repness_test": _number(rep.repness_test),
            "metric": _number(rep.metric), "best_agree": rep.best_agree}


def _majority(item: MajorityStatement) -> dict:
    return {"statement": item.statement, "n_success": item.n_success, "n_trials": item.n_trials,
            "p_success": _number(item.p_success), "p_test": _number(item.p_test)}


def result_document(result: MathResult, *, tick: int, computed_ms: int, duration_ms: float,
                    participation: dict) -> dict:
    """What ``GET /results`` serves. Statements and participants are named by sid and pid."""
    group_of_base = np.full(len(result.base_sizes), -1, np.int64)
    member = result.base_cluster >= 0
    group_of_base[result.base_cluster[member]] = result.group[member]
    tallies = result.group_tallies
    everyone = tallies.total()
    statements = {}
    for sid in range(result.n_statements):
        seen = int(everyone.seen[0, sid])
        agree, disagree = int(everyone.agree[0, sid]), int(everyone.disagree[0, sid])
        statements[str(sid)] = {
            "x": _number(result.statement_xy[sid, 0]), "y": _number(result.statement_xy[sid, 1]),
            "extremity": _number(result.extremity[sid]), "priority": _number(result.priority[sid]),
            "moderated_out": bool(result.moderated_out[sid]),
            "agree": agree, "disagree": disagree, "pass": seen - agree - disagree,
            "group_informed_consensus": _number(result.group_informed_consensus[sid]),
        }
    groups = []
    for g, reps in enumerate(result.repness):
        groups.append({
            "id": g, "name": group_name(g), "size": int((result.group == g).sum()),
            "representative": [_rep(r) for r in reps],
            "votes": {"agree": tallies.agree[g].tolist(), "disagree": tallies.disagree[g].tolist(),
                      "seen": tallies.seen[g].tolist()},
        })
    return {
        "tick": tick,
        "computed_ms": computed_ms,
        "duration_ms": round(duration_ms, 1),
        "participation": participation,
        "n_participants": result.n_participants,
        "n_in_conversation": int(result.in_conversation.sum()),
        "n_votes": result.n_votes,
        "k": result.k,
        "groups": groups,
        "base_clusters": [
            {"x": _number(c[0]), "y": _number(c[1]), "size": int(s), "group": int(g)}
            for c, s, g in zip(result.base_centres.tolist(), result.base_sizes.tolist(),
                               group_of_base.tolist())
        ],
        "consensus": {side: [_majority(m) for m in items]
                      for side, items in result.consensus.items()},
        "statements": statements,
        "silhouettes": {str(k): _number(s) for k, s in result.silhouettes.items()},
    }


def positions_blob(result: MathResult) -> bytes:
    """Each participant's x, y and group (-1: not clustered), as a compressed npz."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=result.x.astype(np.float32), y=result.y.astype(np.float32),
                        group=result.group.astype(np.int16))
    return buffer.getvalue()


def read_positions(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob)) as arrays:
        return {name: arrays[name] for name in arrays.files}
