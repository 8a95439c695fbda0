"""The moderation page, ``/c/<id>/moderate``: the queue by status, a page at a time.

The server renders the page asked for (status, search, page) from the same document the API's
``GET .../moderation/queue`` gives, so it reads before any script runs and never renders more
than one page of a queue of thousands. The script (``static/js/moderate.js``) then decides,
selects, undoes and takes in new submissions through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import request, url_for
from flask_babel import gettext as _

from polis_like.storage import conversations as store
from polis_like.storage import queue

from ..api.common import db, query_int
from ..api.moderation import queue_document
from ..api.transfer import NAMES as EXPORT_NAMES
from . import blueprint
from .staff import render_staff, staff_page

PER_PAGE = 25
LOG_SHOWN = 20


def status_names() -> dict[str, str]:
    """Each status's name on the page."""
    return {"pending": _("Pending"), "accepted": _("Accepted"), "rejected": _("Rejected")}


def action_names() -> dict[str, str]:
    """Each moderation log action's name on the page."""
    return {
        "accept": _("accepted"),
        "reject": _("rejected"),
        "unmoderate": _("returned to pending"),
        "meta": _("marked meta"),
        "unmeta": _("unmarked meta"),
        "ban": _("banned a participant"),
        "unban": _("lifted a ban"),
        "settings": _("changed the settings"),
        "moderators": _("changed the moderators"),
    }


def when(ms: int) -> str:
    """A log entry's time, in UTC (the script shows it in the reader's own time zone)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _script_texts() -> dict:
    """The strings the page's script shows, in the page's language."""
    return {
        "statuses": status_names(),
        "actions": action_names(),
        "accepted": _("Statement #{id} accepted."),
        "rejected": _("Statement #{id} rejected."),
        "pending": _("Statement #{id} returned to pending."),
        "bulk_accepted": _("{n} statements accepted."),
        "bulk_rejected": _("{n} statements rejected."),
        "meta_on": _("Statement #{id} marked meta."),
        "meta_off": _("Statement #{id} no longer marked meta."),
        "undone": _("Undone: {n} statements are back as they were."),
        "banned": _("The author of statement #{id} is banned."),
        "unbanned": _("The author of statement #{id} may take part again."),
        "ban": _("Ban author"),
        "unban": _("Unban author"),
        "none_selected": _("Select statements first (X or the checkboxes)."),
        "arrived": _("{n} new statements waiting."),
        "network": _("That did not work; check your connection and try again."),
        "selected": _("{n} selected"),
        "live": _("Live: new statements appear here."),
        "reconnecting": _("Reconnecting…"),
        "someone": _("(deleted account)"),
        "select_one": _("Select statement #{id}"),
        "decide": _("Decide on statement #{id}"),
        "near": _("Near-duplicates"),
        "participant": _("participant {pid}"),
    }


@blueprint.get("/c/<id:conversation_id>/moderate")
@staff_page("moderator")
def moderate(conversation_id: int):
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    status = request.args.get("status", "pending")
    if status not in store.STATUS_NAMES:
        status = "pending"
    text = (request.args.get("q") or "").strip()[:200] or None
    page = query_int("page", 1, low=1, high=10**6)
    document = queue_document(
        session,
        conversation_id,
        status=status,
        query=text,
        offset=(page - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    pages = max(1, -(-document["total"] // PER_PAGE))

    def link(**change) -> str:
        args = {"status": status, "q": text or None, "page": None, **change}
        args = {k: v for k, v in args.items() if v not in (None, "", 1)}
        return url_for("web.moderate", conversation_id=conversation_id, **args)

    exports = [
        (
            f"{name}.csv",
            url_for("api.transfer.export_file", conversation_id=conversation_id, name=name),
        )
        for name in EXPORT_NAMES
    ]
    return render_staff(
        "moderate.html",
        conversation=conversation,
        queue=document,
        page=page,
        pages=pages,
        link=link,
        statuses=status_names(),
        actions=action_names(),
        log=queue.named_log(session, conversation_id, offset=0, limit=LOG_SHOWN),
        exports=exports,
        when=when,
        export_zip=url_for("api.transfer.export_zip", conversation_id=conversation_id),
        page_data={
            "conversation": conversation_id,
            "status": status,
            "q": text or "",
            "offset": (page - 1) * PER_PAGE,
            "limit": PER_PAGE,
            "log_limit": LOG_SHOWN,
        },
        js_texts=_script_texts(),
    )
