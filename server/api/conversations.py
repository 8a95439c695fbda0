"""Conversations: create (admin), read (anyone), change settings and list (admin)."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from polis_like.errors import InputError
from polis_like.storage import conversations as store

from . import shapes
from .common import db, json_body, query_int, require, signed_in

blueprint = Blueprint("conversations", __name__)


@blueprint.post("/conversations")
@require("admin")
def create_conversation():
    body = json_body()
    settings = store.check_settings(body, creating=True)
    seeds = body.get("seed_statements", [])
    if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
        raise InputError("seed_statements must be a list of strings")
    session = db()
    conversation = store.create_conversation(
        session, settings, owner_id=signed_in().id, seeds=seeds
    )
    session.commit()
    response = jsonify(shapes.conversation_json(conversation))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_conversation", conversation_id=conversation.id)
    return response


@blueprint.get("/conversations/<id:conversation_id>")
def get_conversation(conversation_id: int):
    return jsonify(shapes.conversation_json(store.get_conversation(db(), conversation_id)))


@blueprint.patch("/conversations/<id:conversation_id>")
@require("admin")
def update_conversation(conversation_id: int):
    settings = store.check_settings(json_body(), creating=False)
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    store.update_settings(session, conversation, settings, signed_in().id)
    session.commit()
    return jsonify(shapes.conversation_json(conversation))


@blueprint.get("/conversations")
@require("moderator")
def list_conversations():
    offset = query_int("offset", 0, low=0, high=10**9)
    limit = query_int("limit", 50, low=1, high=500)
    rows = store.list_conversations(db(), offset=offset, limit=limit)
    return jsonify({"conversations": [shapes.conversation_json(c) for c in rows]})
