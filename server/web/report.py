"""The report, ``/c/<id>/report``: one result tick, readable without script, printable.

``/c/<id>/report`` shows the latest result and links to its permalink ``/c/<id>/report/<tick>``,
which shows exactly that tick for as long as the conversation exists: the first showing pins the
tick (:mod:`polis_like.storage.reports`) so that the pruning of old results keeps it.
Everything is rendered here, statement texts included; statements moderated out (then or since)
never appear. A conversation whose map is disabled shows its report to staff only, like its
results.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _

from polis_like.errors import Forbidden
from polis_like.storage import conversations as store
from polis_like.storage import jobs, reports
from polis_like.storage.results import ResultsDocument

from ..api.common import db, moderates
from . import blueprint
from .report_map import map_view, pattern_of

#: How many statements the group-informed consensus and the divisive lists show.
SHOWN = 5
#: Members of a group who must have voted on a statement for the group's share to count.
MIN_SEEN = 3


def _share(count: int, total: int) -> dict:
    """A count with its whole percentage of ``total`` (0 when nobody voted)."""
    return {"n": count, "pct": round(100 * count / total) if total else 0}


def _tally(agree: int, disagree: int, seen: int) -> dict:
    """Agree / disagree / pass among ``seen`` voters, with the bar widths (they add up to 100)."""
    passed = max(seen - agree - disagree, 0)
    a, d = _share(agree, seen), _share(disagree, seen)
    p = {"n": passed, "pct": (100 - a["pct"] - d["pct"]) if seen else 0}
    return {"seen": seen, "agree": a, "disagree": d, "pass": p}


def _shown(document: ResultsDocument, texts: dict[int, tuple[str, bool]]) -> dict[int, str]:
    """The statements a report may show: visible now and not moderated out in the result."""
    return {
        sid: text
        for sid, (text, _meta) in texts.items()
        if str(sid) in document.statements and not document.statements[str(sid)].moderated_out
    }


def _groups(document: ResultsDocument, shown: dict[int, str]) -> list[dict]:
    """Each group with its representative statements and the group's and the others' votes."""
    out = []
    for group in document.groups:
        votes = group.votes
        statements = []
        for rep in group.representative:
            sid = rep.statement
            if sid not in shown or sid >= len(votes.seen):
                continue
            everyone = document.statements[str(sid)]
            seen_all = everyone.agree + everyone.disagree + everyone.passes
            statements.append(
                {
                    "sid": sid,
                    "text": shown[sid],
                    "direction": rep.direction,
                    "group": _tally(votes.agree[sid], votes.disagree[sid], votes.seen[sid]),
                    "others": _tally(
                        everyone.agree - votes.agree[sid],
                        everyone.disagree - votes.disagree[sid],
                        seen_all - votes.seen[sid],
                    ),
                }
            )
        pattern, _colour = pattern_of(group.id)
        out.append(
            {
                "id": group.id,
                "name": group.name,
                "size": group.size,
                "pattern": pattern,
                "statements": statements,
            }
        )
    return out


def _by_group(document: ResultsDocument, sid: int) -> list[dict]:
    """Every group's votes on one statement."""
    return [
        {
            "name": g.name,
            **_tally(g.votes.agree[sid], g.votes.disagree[sid], g.votes.seen[sid]),
        }
        for g in document.groups
        if sid < len(g.votes.seen)
    ]


def _consensus(document: ResultsDocument, shown: dict[int, str]) -> dict[str, list[dict]]:
    """The majority lists: statements most of everyone agrees, or disagrees, with."""
    return {
        side: [
            {
                "sid": m.statement,
                "text": shown[m.statement],
                **_share(m.n_success, m.n_trials),
                "of": m.n_trials,
            }
            for m in document.consensus.get(side, [])
            if m.statement in shown
        ]
        for side in ("agree", "disagree")
    }


def _informed(document: ResultsDocument, shown: dict[int, str]) -> list[dict]:
    """The statements every group tends to agree with (group-informed consensus)."""
    scored = [(document.statements[str(sid)].group_informed_consensus or 0.0, sid) for sid in shown]
    # kept only when the groups' geometric mean chance of agreeing is at least one half
    floor = 0.5 ** max(len(document.groups), 1)
    best = sorted((item for item in scored if item[0] >= floor), key=lambda i: (-i[0], i[1]))
    return [
        {
            "sid": sid,
            "text": shown[sid],
            "score": round(100 * score),
            "groups": _by_group(document, sid),
        }
        for score, sid in best[:SHOWN]
    ]


def _divisive(document: ResultsDocument, shown: dict[int, str]) -> list[dict]:
    """The statements whose share of agreement differs most between groups."""
    spread = []
    for sid in shown:
        shares = [
            g.votes.agree[sid] / g.votes.seen[sid]
            for g in document.groups
            if sid < len(g.votes.seen) and g.votes.seen[sid] >= MIN_SEEN
        ]
        if len(shares) >= 2 and max(shares) > min(shares):
            spread.append((max(shares) - min(shares), sid))
    spread.sort(key=lambda item: (-item[0], item[1]))
    return [
        {
            "sid": sid,
            "text": shown[sid],
            "gap": round(100 * gap),
            "groups": _by_group(document, sid),
        }
        for gap, sid in spread[:SHOWN]
    ]


def _pattern_names() -> dict[str, str]:
    return {
        "diagonal": _("diagonal stripes"),
        "dots": _("dots"),
        "cross": _("cross-hatching"),
        "horizontal": _("horizontal stripes"),
        "vertical": _("vertical stripes"),
        "checks": _("checks"),
        "waves": _("waves"),
        "rings": _("rings"),
    }


def _computed(document: ResultsDocument) -> dict:
    when = datetime.fromtimestamp(document.computed_ms / 1000, tz=UTC)
    return {"iso": when.isoformat(timespec="seconds"), "text": format_datetime(when, "medium")}


def _conversation(conversation_id: int):
    """The conversation, if this request may see its results (403 otherwise)."""
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    if not conversation.map_enabled and not moderates(conversation_id):
        raise Forbidden(_("The report of this conversation is shown to its moderators only."))
    return session, conversation


def _render(session, conversation, tick: int, *, latest: bool):
    document = reports.pinned_document(session, conversation.id, tick) if tick else None
    session.commit()
    if document is None:
        if latest:  # no result yet
            return render_template("report.html", conversation=conversation, document=None)
        return (
            render_template(
                "report_gone.html",
                conversation=conversation,
                tick=tick,
                latest_url=url_for("web.report", conversation_id=conversation.id),
            ),
            404,
        )
    rows = store.visible_statements(session, conversation.id, conversation.moderation)
    shown = _shown(document, {sid: (text, meta) for sid, text, meta in rows})
    return render_template(
        "report.html",
        conversation=conversation,
        document=document,
        latest=latest,
        permalink=url_for("web.report_tick", conversation_id=conversation.id, tick=tick),
        computed=_computed(document),
        groups=_groups(document, shown),
        consensus=_consensus(document, shown),
        informed=_informed(document, shown),
        divisive=_divisive(document, shown),
        map=map_view(document),
        pattern_names=_pattern_names(),
    )


@blueprint.get("/c/<id:conversation_id>/report")
def report(conversation_id: int):
    session, conversation = _conversation(conversation_id)
    return _render(session, conversation, jobs.current_tick(session, conversation_id), latest=True)


@blueprint.get("/c/<id:conversation_id>/report/<id:tick>")
def report_tick(conversation_id: int, tick: int):
    session, conversation = _conversation(conversation_id)
    return _render(session, conversation, tick, latest=False)
