"""The participant page, ``/c/<id>``: one statement at a time, one's own votes, where one stands."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from polis_like.errors import Forbidden, InputError
from polis_like.storage import conversations as store
from polis_like.storage import jobs, votes
from polis_like.storage.conversations import STATEMENT_MAX

from ..api import cache
from ..api.common import db, who
from ..api.participation import check_invite, next_payload
from . import blueprint
from .freshness import results_behind
from .standing import standing_of


def _vote_names() -> dict[int, str]:
    return {1: _("Agree"), -1: _("Disagree"), 0: _("Pass")}


def _script_texts() -> dict[str, str]:
    """The strings the page's script shows, in the page's language."""
    return {
        "progress": _("Statement {n} of {total}"),
        "changed": _("Your vote is now: {vote}."),
        "left": _("{n} characters left"),
        "empty": _("Write your statement first."),
        "duplicate": _("This statement has been made already. Vote on it instead."),
        "pending": _("Thank you. Your statement will be shown once a moderator accepts it."),
        "shown": _("Thank you. Your statement is now shown to other participants."),
        "network": _("That did not work; check your connection and try again."),
        "agree": _("Agree"),
        "disagree": _("Disagree"),
        "pass": _("Pass"),
    }


@blueprint.get("/c/<id:conversation_id>")
def participant(conversation_id: int):
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    tick = jobs.current_tick(session, conversation_id)
    xid = request.args.get("xid") or None
    state, pid = "open", None
    try:
        found = votes.find_participant(session, conversation_id, who(conversation, create=True))
    except Forbidden:
        state, found = "xid_required", None
    except InputError:  # an xid where the conversation takes none: ignore it
        xid, found = None, None
    invite = request.args.get("invite") or None
    if found is not None:
        pid = found[0]
        if found[1]:
            state = "banned"
    elif state == "open":
        try:
            check_invite(conversation, {})
        except Forbidden:
            state = "invite_required"
    if state == "open" and not conversation.is_open:
        state = "closed"
    shown = cache.visible(session, conversation_id, conversation.revision, conversation.moderation)
    mine = votes.participant_votes(session, conversation_id, pid) if pid is not None else []
    my_votes = [
        {"id": sid, "text": shown.texts[sid][0], "vote": vote}
        for sid, vote in mine
        if sid in shown.texts
    ]
    standing = None
    if pid is not None and conversation.map_enabled and tick:
        standing = standing_of(session, conversation_id, tick, pid, mine, shown.texts)
    if standing is not None:
        standing["behind"] = results_behind(session, conversation_id)
    names = _vote_names()
    return render_template(
        "participant.html",
        conversation=conversation,
        state=state,
        xid=xid,
        invite=invite,
        embed=request.args.get("embed") == "1",
        next=next_payload(conversation, tick, pid),
        my_votes=my_votes,
        standing=standing,
        vote_names=names,
        vote_choices=[(1, names[1]), (-1, names[-1]), (0, names[0])],
        statement_max=STATEMENT_MAX,
        js_texts=_script_texts(),
    )
