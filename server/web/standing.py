"""Where a participant stands: their group, what it thinks, and where they differ from it."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from polis_like.storage import results

from ..api import cache

#: How many statements each list shows.
SHOWN = 3
#: Group members who must have voted on a statement before it says what the group thinks.
MIN_SEEN = 3


def standing_of(
    session: Session,
    conversation_id: int,
    tick: int,
    pid: int,
    mine: list[tuple[int, int]],
    texts: dict[int, tuple[str, bool]],
) -> dict | None:
    """The participant's group in the result of ``tick`` and what sets it apart, or None when
    they are not clustered (yet)."""
    place = results.position_of(session, conversation_id, tick, pid)
    document = cache.document(session, conversation_id, tick)
    if place is None or place[2] is None or document is None:
        return None
    group = document.groups[place[2]]
    votes = group.votes
    agrees = [
        {
            "text": texts[rep.statement][0],
            "share": _(
                "%(n)s of %(total)s in the group agree", n=rep.n_success, total=rep.n_trials
            ),
        }
        for rep in group.representative
        if rep.direction == "agree" and rep.statement in texts
    ][:SHOWN]
    differs = []
    for sid, vote in mine:
        if vote == 0 or sid not in texts or sid >= len(votes.seen) or votes.seen[sid] < MIN_SEEN:
            continue
        seen = votes.seen[sid]
        side, count = (1, votes.agree[sid]) if vote == -1 else (-1, votes.disagree[sid])
        if count * 2 <= seen:
            continue  # most of the group does not vote against them here
        note = (
            _("you disagree; %(n)s of %(total)s in the group agree", n=count, total=seen)
            if side == 1
            else _("you agree; %(n)s of %(total)s in the group disagree", n=count, total=seen)
        )
        differs.append((count / seen, {"text": texts[sid][0], "note": note}))
    differs.sort(key=lambda item: -item[0])
    return {
        "group_name": group.name,
        "group_size": group.size,
        "agrees": agrees,
        "differs": [item for _share, item in differs[:SHOWN]],
    }
