"""Math results: the latest one, with an ETag (the stream of new ones is in events.py)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from polis_like.errors import Forbidden, InputError, NotFound
from polis_like.storage import conversations as store
from polis_like.storage import jobs
from polis_like.storage import results as stored

from .common import db, moderates, not_modified, tick_etag
from .texts import texts_etag, with_texts

blueprint = Blueprint("results", __name__)


def visible_tick(session, conversation_id: int) -> int:
    """The latest tick of a conversation whose results this request may see."""
    conversation = store.get_conversation(session, conversation_id)
    if not conversation.map_enabled and not moderates(conversation_id):
        raise Forbidden("the results of this conversation are shown to moderators only")
    return jobs.current_tick(session, conversation_id)


@blueprint.get("/conversations/<id:conversation_id>/results")
def results(conversation_id: int):
    """The latest document; ``?include=texts`` adds the statement texts (see watching.py)."""
    include = request.args.get("include")
    if include not in (None, "texts"):
        raise InputError("include must be 'texts'")
    session = db()
    tick = visible_tick(session, conversation_id)
    staff = moderates(conversation_id)

    def etag_of(tick: int) -> str:
        if include is None:
            return tick_etag(conversation_id, tick)
        revision = store.get_conversation(session, conversation_id).revision
        return texts_etag(conversation_id, tick, revision, staff)

    if (unchanged := not_modified(etag_of(tick))) is not None:
        return unchanged
    tick, text = stored.latest_text(session, conversation_id)
    if text is None:
        raise NotFound("no result yet: the worker has not computed this conversation")
    if include == "texts":
        text = with_texts(session, conversation_id, text, staff)
    return Response(
        text,
        mimetype="application/json",
        headers={"ETag": etag_of(tick), "Cache-Control": "no-cache"},
    )
