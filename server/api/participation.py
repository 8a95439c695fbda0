"""The participant's routes: the next statement, votes, new statements, where they stand."""

from __future__ import annotations

import hmac
import threading

import numpy as np
from flask import Blueprint, current_app, jsonify, request, url_for

from polis_like.errors import Forbidden, InputError
from polis_like.storage import conversations as store
from polis_like.storage import db as storage_db
from polis_like.storage import results, votes

from ..ratelimit import client_address, limiter
from . import cache, shapes
from .common import admitted, claimed, db, identifier, integer, json_body, moderates, query_int

blueprint = Blueprint("participation", __name__)

VOTES = {1: "agree", 0: "pass", -1: "disagree"}


def _conversation(conversation_id: int):
    """What the participant routes need of the conversation, and its latest tick (one query)."""
    row = store.participant_view(db(), conversation_id)
    return row, row.tick


def _visit(conversation_id: int, body: dict | None = None, *, autocommit: bool = True):
    """The conversation as the participant routes need it (see :func:`_conversation`), who
    asks, and their (pid, banned) when they have taken part: one query. With ``autocommit``
    (routes whose writes are each one statement), no transaction on PostgreSQL."""
    session = db()
    if autocommit:
        storage_db.autocommit(session)
    person = claimed(body)
    row = votes.visit(session, conversation_id, person)
    person = admitted(row, person)
    return row, person, ((row.pid, row.banned) if row.pid is not None else None)


_draws = threading.local()


def _rng() -> np.random.Generator:
    seed = current_app.config.get("ROUTING_SEED")
    if seed is None:  # one generator per thread: seeding from the OS costs more than a vote
        if not hasattr(_draws, "rng"):
            _draws.rng = np.random.default_rng()
        return _draws.rng
    counter = current_app.extensions.setdefault("polis_like.draws", [0])
    counter[0] += 1
    return np.random.default_rng([seed, counter[0]])


def next_payload(conversation, tick: int, pid: int | None, voted: np.ndarray | None = None) -> dict:
    """The next statement for a participant (drawn by routing priority) and where they are;
    ``voted``: the statements they voted on, when the caller has them already."""
    session = db()
    shown = cache.visible(session, conversation.id, conversation.revision, conversation.moderation)
    if voted is None:
        voted = (
            votes.voted_sids(session, conversation.id, pid) if pid is not None else np.empty(0, int)
        )
    candidates = np.setdiff1d(shown.sids, voted, assume_unique=True)
    priority = cache.priority(session, conversation.id, tick)
    sid = votes.choose_next(candidates, priority, _rng())
    statement = None
    if sid is not None:
        text, is_meta = shown.texts[sid]
        statement = {"id": sid, "text": text, "is_meta": is_meta}
    return {
        "statement": statement,
        "remaining": len(candidates),
        "total": len(shown.sids),
        "voted": len(voted),
        "participant": pid,
    }


@blueprint.get("/conversations/<id:conversation_id>/next")
def next_statement(conversation_id: int):
    conversation, _, found = _visit(conversation_id)
    return jsonify(next_payload(conversation, conversation.tick, found[0] if found else None))


def _participant(
    conversation, person: votes.Who, body: dict, found: tuple[int, bool] | None
) -> int:
    """The pid of the participant ``person`` (``found``: their (pid, banned) when known); a
    new one only with the invite code (when the conversation has one) and within the limits of
    new participants."""
    if not conversation.is_open:
        raise Forbidden("this conversation is closed")

    def admit() -> None:
        check_invite(conversation, body)
        limiter().check("joins", ip=client_address(), conversation=conversation.id)

    pid, banned = found or votes.join(db(), conversation.id, person, admit=admit)
    if banned:
        raise Forbidden("this participant has been banned from the conversation")
    return pid


def check_invite(conversation, body: dict) -> None:
    """Refuse (403) a new participant of a conversation with an invite code who does not
    bring it (``invite`` in the body or the query)."""
    if conversation.invite_code is None:
        return
    code = body.get("invite", request.args.get("invite"))
    if not isinstance(code, str) or not hmac.compare_digest(
        code.strip().encode(), conversation.invite_code.encode()
    ):
        raise Forbidden(
            "this conversation is open to invited participants only: use the link "
            "with the invite code you were given"
        )


def _limited(action: str, conversation, person: votes.Who) -> None:
    """Count ``action`` of ``person`` against its rate limits."""
    limiter().check(
        action,
        participant=person.xid if person.xid is not None else person.visitor,
        ip=client_address(),
        conversation=conversation.id,
    )


@blueprint.post("/conversations/<id:conversation_id>/votes")
def vote(conversation_id: int):
    body = json_body()
    unknown = sorted(set(body) - {"statement_id", "vote", "xid", "invite"})
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    if "statement_id" not in body or "vote" not in body:
        raise InputError("send statement_id and vote")
    sid = identifier(body["statement_id"], "statement_id")
    value = integer(body["vote"], "vote")
    if value not in VOTES:
        raise InputError("vote must be 1 (agree), 0 (pass) or -1 (disagree)")
    conversation, person, found = _visit(conversation_id, body)
    session = db()
    shown = cache.visible(session, conversation.id, conversation.revision, conversation.moderation)
    if sid not in shown.texts:
        votes.statement_status(session, conversation_id, sid)  # 404 when there is no such one
        raise Forbidden(f"statement {sid} is not open for voting")
    _limited("votes", conversation, person)
    pid = _participant(conversation, person, body, found)
    voted = votes.record_vote(session, conversation_id, pid, sid, value)  # committed
    payload = next_payload(conversation, conversation.tick, pid, voted)
    payload["vote"] = {"statement_id": sid, "vote": value}
    return jsonify(payload)


@blueprint.post("/conversations/<id:conversation_id>/statements")
def submit_statement(conversation_id: int):
    body = json_body()
    unknown = sorted(set(body) - {"text", "xid", "invite"})
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    if "text" not in body:
        raise InputError("send the statement's text")
    conversation, person, found = _visit(conversation_id, body, autocommit=False)
    if not conversation.write_enabled:
        raise Forbidden("this conversation does not take statements from participants")
    session = db()
    _limited("statements", conversation, person)
    pid = _participant(conversation, person, body, found)
    statement = store.add_statement(session, conversation, body["text"], author_pid=pid)
    # The author agrees with their own statement, as in Pol.is.
    votes.cast_vote(session, conversation_id, pid, statement.sid, 1)
    session.commit()
    document = shapes.statement_json(statement)
    document["status"] = store.STATUS_OF[statement.status]
    response = jsonify(document)
    response.status_code = 201
    response.headers["Location"] = url_for(
        "api.moderation.get_statement", conversation_id=conversation_id, sid=statement.sid
    )
    return response


@blueprint.get("/conversations/<id:conversation_id>/me")
def me(conversation_id: int):
    """Where this participant stands: their votes, group and position in the latest result."""
    conversation, _, found = _visit(conversation_id)
    tick = conversation.tick
    document = {"participant": None, "votes": 0, "tick": tick, "group": None, "x": None, "y": None}
    if found is None:
        return jsonify(document)
    pid = found[0]
    document.update(
        participant=pid, banned=found[1], votes=len(votes.voted_sids(db(), conversation_id, pid))
    )
    if tick and conversation.map_enabled:
        place = results.position_of(db(), conversation_id, tick, pid)
        if place is not None:
            document.update(x=place[0], y=place[1], group=place[2])
    return jsonify(document)


@blueprint.get("/conversations/<id:conversation_id>/statements")
def list_statements(conversation_id: int):
    """Statements, a page at a time. Moderators see every status and may filter by it; others
    see the statements participants are shown."""
    conversation, _ = _conversation(conversation_id)
    offset = query_int("offset", 0, low=0, high=10**9)
    limit = query_int("limit", 50, low=1, high=500)
    text = request.args.get("q") or None
    staff = moderates(conversation_id)
    status_name = request.args.get("status")
    if status_name is not None:
        if status_name not in store.STATUS_NAMES:
            raise InputError("status must be pending, accepted or rejected")
        if not staff:
            raise InputError("only moderators may filter statements by status")
    statuses = None
    if status_name is not None:
        statuses = [store.STATUS_NAMES[status_name]]
    elif not staff:
        statuses = list(store.visible_statuses(conversation.moderation))
    rows, total = store.list_statements(
        db(), conversation_id, statuses=statuses, query=text, offset=offset, limit=limit
    )
    return jsonify(
        {
            "statements": [shapes.statement_json(s, moderator=staff) for s in rows],
            "total": total,
            "offset": offset,
            "limit": limit,
        }
    )
