"""The facilitator dashboard, ``/c/<id>/dashboard``: the opinion map, the groups and what sets
them apart, consensus, participation over time, and how fresh the results are.

Who may watch: anyone with the link while the conversation's map is shown (participants see
the same map on their own page); staff only when the map is turned off, the rule of the
results API the page reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template
from flask_babel import gettext as _

from polis_like.errors import Forbidden, InputError
from polis_like.storage import conversations as store
from polis_like.storage import history, jobs, votes
from polis_like.storage import results as stored
from polis_like.storage.db import now_ms

from ..api import cache
from ..api.common import db, moderates, who
from . import blueprint
from .dashboard_view import SHAPES, view
from .freshness import results_behind

#: Rows of the participation table rendered with the page (the chart has every tick).
TABLE_ROWS = 20


def _script_texts() -> dict[str, str]:
    """The strings the dashboard's scripts show, in the page's language."""
    return {
        "participants": _("{n} participants"),
        "votes": _("{n} votes"),
        "updated": _("updated {s} s ago"),
        "updated_min": _("updated {m} min ago"),
        "never": _("no result yet"),
        "behind": _("The results are running behind: the worker is {s} s behind the votes."),
        "down": _("The service cannot be reached; the figures shown may be out of date."),
        "new_result": _("New results: {n} participants, {m} votes."),
        "reconnecting": _("Reconnecting to live updates…"),
        "agree": _("Agree"),
        "disagree": _("Disagree"),
        "pass": _("Pass"),
        "bar": _("Agree {pa}% · Disagree {pd}% · Pass {pp}% (of {n})"),
        "group": _("Group {name}"),
        "members": _("{n} participants"),
        "you": _("you"),
        "zoom": _("Zoom: {z} times"),
        "map": _("Opinion map of {n} participants in {k} groups"),
        "none": _("None yet."),
        "caption": _("Participation at each update (the latest {n} of {total})"),
        "informed_score": _("group-informed consensus: {score}%"),
        "participants_axis": _("Participants"),
        "votes_axis": _("Votes"),
        "time_axis": _("Time"),
    }


def _viewer_pid(session, conversation) -> int | None:
    """The viewer's pid when they have taken part here (to mark "you" on the map)."""
    try:
        found = votes.find_participant(session, conversation.id, who(conversation, create=False))
    except (Forbidden, InputError):
        return None
    return found[0] if found else None


def _row(point: history.Point) -> dict:
    """A row of the participation table."""
    when = datetime.fromtimestamp(point.computed_ms / 1000, UTC)
    return {
        "tick": point.tick,
        "iso": when.isoformat(timespec="seconds"),
        "time": when.strftime("%Y-%m-%d %H:%M:%S"),
        "participants": point.participation.participants,
        "votes": point.participation.votes,
    }


@blueprint.get("/c/<id:conversation_id>/dashboard")
def dashboard(conversation_id: int):
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    staff = moderates(conversation_id)
    if not conversation.map_enabled and not staff:
        raise Forbidden("this conversation's dashboard is shown to moderators only")
    tick = jobs.current_tick(session, conversation_id)
    document = cache.document(session, conversation_id, tick)
    statuses = None if staff else store.visible_statuses(conversation.moderation)
    texts = history.statement_texts(session, conversation_id, statuses)
    positions = stored.positions_at(session, conversation_id, tick) if document else None
    series = history.series(session, conversation_id)
    shown = view(document, texts, positions) if document else None
    return render_template(
        "dashboard.html",
        conversation=conversation,
        document=document,
        shown=shown,
        series=[_row(point) for point in series[-TABLE_ROWS:]],
        series_total=len(series),
        age_s=max(0, (now_ms() - document.computed_ms) // 1000) if document else None,
        behind=document is not None and results_behind(session, conversation_id),
        config={
            "conversation": conversation_id,
            "tick": tick,
            "pid": _viewer_pid(session, conversation),
            "computed_ms": document.computed_ms if document else None,
            "shapes": list(SHAPES),
            "texts": _script_texts(),
        },
    )
