"""Moderation (moderators and admins): decide on statements, one or many at once; ban."""

from __future__ import annotations

from flask import Blueprint, jsonify

from polis_like.errors import InputError, NotFound
from polis_like.storage import conversations as store

from . import shapes
from .common import db, identifier, is_staff, json_body, query_int, require, signed_in

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
    staff = is_staff()
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
    rows = store.moderation_log(session, conversation_id, offset=offset, limit=limit)
    return jsonify(
        {
            "entries": [
                {
                    "action": e.action,
                    "statement": e.sid,
                    "participant": e.pid,
                    "account": e.account_id,
                    "created_ms": e.created_ms,
                }
                for e in rows
            ]
        }
    )
