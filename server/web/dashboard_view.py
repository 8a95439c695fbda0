"""What the dashboard shows, from a results document: the groups with their representative
statements, consensus and group-informed consensus, each statement with its vote shares.

Plain data for the template; ``static/js/dashboard-render.js`` builds the same from the API's
``/results?include=texts`` when a new result arrives, so keep the two in step.
"""

from __future__ import annotations

import numpy as np

from polis_like.storage.results import Positions, ResultsDocument

#: Statements shown per list (representative, consensus, group-informed consensus).
SHOWN = 5
#: Each group's shape on the map and in the legend, beside its letter and colour.
SHAPES = ("circle", "square", "triangle", "diamond", "hexagon", "star")


def bars(agree: int, disagree: int, seen: int) -> dict:
    """Counts and whole-percent shares of agree, disagree and pass among those who voted."""
    passes = max(0, seen - agree - disagree)
    total = max(seen, 1)
    return {
        "agree": agree,
        "disagree": disagree,
        "pass": passes,
        "seen": seen,
        "pa": round(100 * agree / total),
        "pd": round(100 * disagree / total),
        "pp": round(100 * passes / total),
    }


def _overall(document: ResultsDocument, sid: int) -> dict:
    statement = document.statements[str(sid)]
    return bars(
        statement.agree,
        statement.disagree,
        statement.agree + statement.disagree + statement.passes,
    )


def centres(positions: Positions | None, k: int) -> list[tuple[float, float] | None]:
    """Each group's mean position (None for a group without a placed member)."""
    found: list[tuple[float, float] | None] = []
    for g in range(k):
        if positions is None:
            found.append(None)
            continue
        member = (positions.group == g) & np.isfinite(positions.x)
        if not member.any():
            found.append(None)
            continue
        found.append(
            (
                round(float(positions.x[member].mean()), 3),
                round(float(positions.y[member].mean()), 3),
            )
        )
    return found


def view(document: ResultsDocument, texts: dict[int, str], positions: Positions | None) -> dict:
    """The dashboard's groups, consensus and group-informed consensus; only statements whose
    text the viewer may read are listed."""
    where = centres(positions, len(document.groups))
    groups = []
    for group in document.groups:
        items: list[dict] = []
        for rep in group.representative:
            if rep.statement not in texts or len(items) >= SHOWN:
                continue
            sid = rep.statement
            items.append(
                {
                    "id": sid,
                    "text": texts[sid],
                    "direction": rep.direction,
                    "bars": bars(
                        group.votes.agree[sid], group.votes.disagree[sid], group.votes.seen[sid]
                    ),
                }
            )
        groups.append(
            {
                "id": group.id,
                "name": group.name,
                "size": group.size,
                "shape": SHAPES[group.id % len(SHAPES)],
                "centre": where[group.id],
                "statements": items,
            }
        )
    consensus = {
        side: [
            {"id": m.statement, "text": texts[m.statement], "bars": _overall(document, m.statement)}
            for m in document.consensus.get(side, [])
            if m.statement in texts
        ][:SHOWN]
        for side in ("agree", "disagree")
    }
    ranked = sorted(
        (
            (s.group_informed_consensus, int(sid))
            for sid, s in document.statements.items()
            if s.group_informed_consensus is not None and not s.moderated_out and int(sid) in texts
        ),
        reverse=True,
    )[:SHOWN]
    informed = [
        {
            "id": sid,
            "text": texts[sid],
            "score": round(100 * score),
            "bars": _overall(document, sid),
        }
        for score, sid in ranked
    ]
    return {"groups": groups, "consensus": consensus, "informed": informed}
