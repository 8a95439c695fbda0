"""Moderation (moderators and admins): decide on statements, one or many at once; ban."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from polis_like.errors import InputError, NotFound
from polis_like.storage import conversations as store
from polis_like.storage import queue

from . import shapes
from .common import db, identifier, json_body, moderates, query_int, require, signed_in

blueprint = Blueprint("moderation", __name__)

MAX_BATCH = 10_000


def _decision(body: dict) -> dict:
    decision = {}
    if "status" in body:
        if body["status"] not in store.STATUS_NAMES:
            raise InputError("status must be pending, accepted or rejected")
        decision["status"] = store.STATUS_NAMES[body["status"]]
    if "is_meta" in body:
        if not isinstance(body["is_meta"], bool):
            raise InputError("is_meta must be true or false")
        decision["is_meta"] = body["is_meta"]
    if not decision:
        raise InputError("send status and/or is_meta")
    return decision


@blueprint.get("/conversations/<id:conversation_id>/statements/<id:sid>")
def get_statement(conversation_id: int, sid: int):
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    statement = store.get_statement(session, conversation_id, sid)
    staff = moderates(conversation_id)
    if statement is None or not (staff or store.is_visible(conversation, statement.status)):
        raise NotFound(f"no statement {sid} in conversation {conversation_id}")
    return jsonify(shapes.statement_json(statement, moderator=staff))


@blueprint.patch("/conversations/<id:conversation_id>/statements/<id:sid>")
@require("moderator")
def moderate_one(conversation_id: int, sid: int):
    body = json_body()
    unknown = sorted(set(body) - {"status", "is_meta"})
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    session = db()
    store.get_conversation(session, conversation_id)
    [statement] = store.moderate(
        session, conversation_id, [sid], **_decision(body), account_id=signed_in().id
    )
    session.commit()
    return jsonify(shapes.statement_json(statement, moderator=True))


@blueprint.post("/conversations/<id:conversation_id>/moderation")
@require("moderator")
def moderate_many(conversation_id: int):
    """``{"statement_ids": [...], "status": "accepted"}``: all of them or none."""
    body = json_body()
    unknown = sorted(set(body) - {"statement_ids", "status", "is_meta"})
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    ids = body.get("statement_ids")
    if not isinstance(ids, list) or not ids:
        raise InputError("statement_ids must be a non-empty list of statement ids")
    if len(ids) > MAX_BATCH:
        raise InputError(f"at most {MAX_BATCH} statements at once")
    sids = [identifier(i, "each statement id") for i in ids]
    session = db()
    store.get_conversation(session, conversation_id)
    changed = store.moderate(
        session, conversation_id, sids, **_decision(body), account_id=signed_in().id
    )
    session.commit()
    return jsonify({"statements": [shapes.statement_json(s, moderator=True) for s in changed]})


@blueprint.put("/conversations/<id:conversation_id>/participants/<id:pid>/ban")
@require("moderator")
def ban(conversation_id: int, pid: int):
    return _set_banned(conversation_id, pid, True)


@blueprint.delete("/conversations/<id:conversation_id>/participants/<id:pid>/ban")
@require("moderator")
def unban(conversation_id: int, pid: int):
    return _set_banned(conversation_id, pid, False)


def _set_banned(conversation_id: int, pid: int, banned: bool):
    session = db()
    store.get_conversation(session, conversation_id)
    participant = store.set_banned(session, conversation_id, pid, banned, signed_in().id)
    session.commit()
    return jsonify({"participant": participant.pid, "banned": participant.banned})


@blueprint.get("/conversations/<id:conversation_id>/moderation/log")
@require("moderator")
def moderation_log(conversation_id: int):
    session = db()
    store.get_conversation(session, conversation_id)
    offset = query_int("offset", 0, low=0, high=10**9)
    limit = query_int("limit", 100, low=1, high=1000)
    rows = queue.named_log(session, conversation_id, offset=offset, limit=limit)
    return jsonify(
        {
            "entries": [
                {
                    "action": e.action,
                    "statement": e.sid,
                    "participant": e.pid,
                    "account": e.account_id,
                    "account_name": e.account_name,
                    "created_ms": e.created_ms,
                }
                for e in rows
            ]
        }
    )


@blueprint.get("/conversations/<id:conversation_id>/moderation/queue")
@require("moderator")
def moderation_queue(conversation_id: int):
    """A page of statements of one status (``?status=``, pending by default; ``?q=`` searches)
    with the counts of each status, the near-duplicates of each and whether its author is
    banned: what the moderation page shows, in one request."""
    session = db()
    store.get_conversation(session, conversation_id)
    offset = query_int("offset", 0, low=0, high=10**9)
    limit = query_int("limit", 50, low=1, high=500)
    status = request.args.get("status", "pending")
    if status not in store.STATUS_NAMES:
        raise InputError("status must be pending, accepted or rejected")
    text = (request.args.get("q") or "").strip()[:200] or None
    return jsonify(
        queue_document(
            session, conversation_id, status=status, query=text, offset=offset, limit=limit
        )
    )


def queue_document(
    session, conversation_id: int, *, status: str, query: str | None, offset: int, limit: int
) -> dict:
    """The moderation queue's page as JSON (the page renders the same document)."""
    rows, total = store.list_statements(
        session,
        conversation_id,
        statuses=[store.STATUS_NAMES[status]],
        query=query,
        offset=offset,
        limit=limit,
    )
    near = queue.near_duplicates(session, conversation_id, [s.sid for s in rows])
    banned = queue.banned_among(
        session, conversation_id, [s.author_pid for s in rows if s.author_pid is not None]
    )
    statements = []
    for statement in rows:
        document = shapes.statement_json(statement, moderator=True)
        document["author_banned"] = statement.author_pid in banned
        document["near_duplicates"] = [
            {"id": n.sid, "text": n.text, "status": n.status} for n in near.get(statement.sid, [])
        ]
        statements.append(document)
    return {
        "statements": statements,
        "counts": queue.status_counts(session, conversation_id, query=query),
        "status": status,
        "q": query or "",
        "total": total,
        "offset": offset,
        "limit": limit,
    }
