"""What a watcher of a conversation reads beside the results document: every participant's
position on the map (compact binary) and participation over time.

Both follow the results' rules: the ETag is the tick, and when the conversation's map is
disabled only staff may read them.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Response, jsonify

from polis_like.errors import NotFound
from polis_like.storage import history
from polis_like.storage import results as stored

from ..compress import compressible
from .common import db, not_modified, tick_etag
from .results import visible_tick

blueprint = Blueprint("watching", __name__)

#: Bytes per participant in the positions body: float32 x, float32 y, int16 group.
POSITION_BYTES = 10


def positions_body(positions: stored.Positions) -> bytes:
    """Columnar little-endian: n float32 x, then n float32 y, then n int16 group (10 n bytes).

    Columns rather than records so that a browser views each as a typed array without copying
    (the offsets 0, 4n and 8n are aligned for their types). x and y are NaN for a participant
    who is not placed; group is -1 for one who is not clustered.
    """
    return b"".join(
        (
            np.ascontiguousarray(positions.x, dtype="<f4").tobytes(),
            np.ascontiguousarray(positions.y, dtype="<f4").tobytes(),
            np.ascontiguousarray(positions.group, dtype="<i2").tobytes(),
        )
    )


@blueprint.get("/conversations/<id:conversation_id>/positions")
def positions(conversation_id: int):
    session = db()
    tick = visible_tick(session, conversation_id)
    etag = tick_etag(conversation_id, tick)
    if (unchanged := not_modified(etag)) is not None:
        return unchanged
    found = stored.positions_at(session, conversation_id, tick) if tick else None
    if found is None:
        raise NotFound("no result yet: the worker has not computed this conversation")
    # Binary, but gzip takes it to about 40 %: the group column repeats, unplaced are all NaN.
    return compressible(
        Response(
            positions_body(found),
            mimetype="application/octet-stream",
            headers={
                "ETag": etag,
                "Cache-Control": "no-cache",
                "X-Participants": str(len(found.x)),
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
