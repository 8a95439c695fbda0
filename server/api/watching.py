"""What a watcher of a conversation reads beside the results document: every participant's
position on the map (the stored columns of ``storage.results.positions_blob``, served as they
are) and participation over time.

Both follow the results' rules: the ETag is the tick, and when the conversation's map is
disabled only staff may read them.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from polis_like.errors import NotFound
from polis_like.storage import history
from polis_like.storage import results as stored

from ..compress import compressible
from .common import db, not_modified, tick_etag
from .results import visible_tick

blueprint = Blueprint("watching", __name__)


@blueprint.get("/conversations/<id:conversation_id>/positions")
def positions(conversation_id: int):
    session = db()
    tick = visible_tick(session, conversation_id)
    etag = tick_etag(conversation_id, tick)
    if (unchanged := not_modified(etag)) is not None:
        return unchanged
    found = stored.positions_bytes_at(session, conversation_id, tick) if tick else None
    if found is None:
        raise NotFound("no result yet: the worker has not computed this conversation")
    # Binary, but gzip takes it to about 40 %: the group column repeats, unplaced are all NaN.
    return compressible(
        Response(
            found,  # as stored: the columns of storage.results.positions_blob
            mimetype="application/octet-stream",
            headers={
                "ETag": etag,
                "Cache-Control": "no-cache",
                "X-Participants": str(len(found) // stored.POSITION_BYTES),
                "X-Tick": str(tick),
            },
        )
    )


@blueprint.get("/conversations/<id:conversation_id>/participation")
def participation(conversation_id: int):
    session = db()
    tick = visible_tick(session, conversation_id)
    etag = tick_etag(conversation_id, tick)
    if (unchanged := not_modified(etag)) is not None:
        return unchanged
    points = history.series(session, conversation_id)
    response = jsonify(
        {
            "series": [
                {
                    "tick": point.tick,
                    "computed_ms": point.computed_ms,
                    **stored.to_plain(point.participation),
                }
                for point in points
            ]
        }
    )
    response.headers.update({"ETag": etag, "Cache-Control": "no-cache"})
    return response
