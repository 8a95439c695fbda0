"""Statement texts served with the results (``GET /results?include=texts``), so that a reader
needs no request per statement. The stored document is left as the worker wrote it: the texts
are read at request time, so moderation shows at once and each reader gets only what they may.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from polis_like.storage import conversations as store
from polis_like.storage import history


def texts_etag(conversation_id: int, tick: int, revision: int, staff: bool) -> str:
    """The ETag of a document with texts: texts change with moderation and differ by role."""
    return f'"{conversation_id}-{tick}-r{revision}-{"s" if staff else "p"}"'


def with_texts(session: Session, conversation_id: int, text: str, staff: bool) -> str:
    """The stored document's JSON with a ``texts`` object (sid -> text) added at its end.

    Staff get every statement's text; others only those participants may see, so that a
    rejected (or, under strict moderation, pending) statement's text never leaves to them.
    """
    conversation = store.get_conversation(session, conversation_id)
    statuses = None if staff else store.visible_statuses(conversation.moderation)
    texts = history.statement_texts(session, conversation_id, statuses)
    encoded = json.dumps(
        {str(sid): value for sid, value in texts.items()},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f'{text.rstrip()[:-1]},"texts":{encoded}}}'
