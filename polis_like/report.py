"""Turn a math result into what people read: a JSON document and a facilitator's text summary."""

from __future__ import annotations

import math
import string
import textwrap
from typing import TYPE_CHECKING

import numpy as np

from .conversation import Conversation

if TYPE_CHECKING:
    from .math import MathResult
    from .math.stats import MajorityStatement, RepStatement


def _numbers(values: np.ndarray) -> list[float | None]:
    """The values as floats, None for NaN (JSON has no NaN): one pass, no call per value."""
    values = np.asarray(values, dtype=np.float64)
    numbers = values.tolist()
    if np.isnan(values).any():
        return [None if math.isnan(v) else v for v in numbers]
    return numbers


def _rep(rep: RepStatement, statement_ids: list[str]) -> dict:
    return {
        "statement": statement_ids[rep.statement],
        "direction": rep.direction,
        "best_agree": rep.best_agree,
        "n_success": rep.n_success,
        "n_trials": rep.n_trials,
        "p_success": rep.p_success,
        "p_test": rep.p_test,
        "repness": rep.repness,
        "repness_test": rep.repness_test,
        "metric": rep.metric,
    }


def _majority(item: MajorityStatement, statement_ids: list[str]) -> dict:
    return {
        "statement": statement_ids[item.statement],
        "n_success": item.n_success,
        "n_trials": item.n_trials,
        "p_success": item.p_success,
        "p_test": item.p_test,
    }


def to_json(conversation: Conversation, result: MathResult, **run: object) -> dict:
    """The analysis as a JSON-ready dict keyed by the export's ids (as strings).

    ``run`` (reducer, seed, replay...) is recorded as given under ``"run"``.
    """
    pids = conversation.participant_ids
    sids = [s.id for s in conversation.statements]
    participants = {
        pid: {"group": g if g >= 0 else None, "x": x, "y": y}
        for pid, g, x, y in zip(
            pids,
            result.group.astype(np.int64).tolist(),
            _numbers(result.x),
            _numbers(result.y),
            strict=True,
        )
    }
    groups = [
        {
            "id": g,
            "members": [pids[i] for i in result.group_members(g)],
            "representative": [_rep(r, sids) for r in reps],
        }
        for g, reps in enumerate(result.repness)
    ]
    active = ~result.moderated_out
    return {
        "topic": conversation.topic,
        "run": run,
        "k": result.k,
        "n_participants": result.n_participants,
        "n_statements": result.n_statements,
        "n_votes": result.n_votes,
        "n_in_conversation": int(result.in_conversation.sum()),
        "participants": participants,
        "groups": groups,
        "consensus": {
            side: [sids[m.statement] for m in items] for side, items in result.consensus.items()
        },
        "consensus_statistics": {
            side: [_majority(m, sids) for m in items] for side, items in result.consensus.items()
        },
        "group_informed_consensus": {
            sids[j]: float(result.group_informed_consensus[j]) for j in np.flatnonzero(active)
        },
        "priority": {sid: float(p) for sid, p in zip(sids, result.priority.tolist(), strict=True)},
        "statements": {
            sid: {
                "x": float(xy[0]),
                "y": float(xy[1]),
                "extremity": float(e),
                "moderated_out": bool(out),
            }
            for sid, xy, e, out in zip(
                sids, result.statement_xy, result.extremity, result.moderated_out, strict=True
            )
        },
        "silhouettes": {str(k): s for k, s in result.silhouettes.items()},
        "best_k": result.best_k,
    }


def group_name(group: int) -> str:
    """Pol.is names groups A, B, C..."""
    return string.ascii_uppercase[group] if group < 26 else f"G{group}"


def _line(text: str, width: int = 78, indent: str = "      ") -> str:
    return textwrap.shorten(" ".join(text.split()), width=width - len(indent), placeholder=" ...")


def to_text(conversation: Conversation, result: MathResult) -> str:
    """What a facilitator reads: the groups, their representative statements, the consensus."""
    texts = [s.text for s in conversation.statements]
    sids = [s.id for s in conversation.statements]
    lines = [
        conversation.topic or "(untitled conversation)",
        (
            f"{result.n_participants} participants, {result.n_statements} statements, "
            f"{result.n_votes} votes; {int(result.in_conversation.sum())} clustered "
            f"into {result.k} opinion group{'s' if result.k != 1 else ''}."
        ),
        "",
    ]
    for g, reps in enumerate(result.repness):
        size = len(result.group_members(g))
        lines.append(f"Group {group_name(g)}: {size} participant{'s' if size != 1 else ''}")
        for rep in reps:
            share = round(100 * rep.n_success / rep.n_trials) if rep.n_trials else 0
            verb = "agree" if rep.direction == "agree" else "disagree"
            lines.append(
                f"  {share:3d}% {verb:8s} #{sids[rep.statement]}"
                f" ({rep.n_success} of {rep.n_trials})"
            )
            lines.append("      " + _line(texts[rep.statement]))
        lines.append("")
    for side, title in (("agree", "Most agree with"), ("disagree", "Most disagree with")):
        items = result.consensus[side]
        lines.append(f"{title} (whole population):" if items else f"{title}: none")
        for item in items:
            share = round(100 * item.n_success / item.n_trials) if item.n_trials else 0
            lines.append(f"  {share:3d}% {side:8s} #{sids[item.statement]}")
            lines.append("      " + _line(texts[item.statement]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
