"""Conversations: create (admin), read (anyone), change settings (admin), list (each staff
account its own), and the moderators an admin gives a conversation."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from polis_like.errors import InputError
from polis_like.storage import conversations as store
from polis_like.storage import moderators

from . import shapes
from .common import db, identifier, json_body, moderates, query_int, require, signed_in

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
    response = jsonify(shapes.conversation_json(conversation, moderator=True))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_conversation", conversation_id=conversation.id)
    return response


@blueprint.get("/conversations/<id:conversation_id>")
def get_conversation(conversation_id: int):
    conversation = store.get_conversation(db(), conversation_id)
    return jsonify(shapes.conversation_json(conversation, moderator=moderates(conversation_id)))


@blueprint.patch("/conversations/<id:conversation_id>")
@require("admin")
def update_conversation(conversation_id: int):
    settings = store.check_settings(json_body(), creating=False)
    session = db()
    conversation = store.get_conversation(session, conversation_id)
    store.update_settings(session, conversation, settings, signed_in().id)
    session.commit()
    return jsonify(shapes.conversation_json(conversation, moderator=True))


@blueprint.get("/conversations")
@require("moderator")
def list_conversations():
    offset = query_int("offset", 0, low=0, high=10**9)
    limit = query_int("limit", 50, low=1, high=500)
    rows = store.list_conversations(
        db(), offset=offset, limit=limit, where=moderators.moderated_by(signed_in())
    )
    return jsonify({"conversations": [shapes.conversation_json(c, moderator=True) for c in rows]})


def _moderators_json(conversation_id: int, accounts) -> dict:
    return {
        "conversation": conversation_id,
        "moderators": [{"id": a.id, "name": a.name} for a in accounts],
    }


@blueprint.get("/conversations/<id:conversation_id>/moderators")
@require("moderator")
def list_moderators(conversation_id: int):
    """The moderator accounts given the conversation (admins moderate every one)."""
    session = db()
    store.get_conversation(session, conversation_id)
    given = moderators.moderators_of(session, conversation_id)
    return jsonify(_moderators_json(conversation_id, given))


@blueprint.put("/conversations/<id:conversation_id>/moderators")
@require("admin")
def set_moderators(conversation_id: int):
    """Give the conversation exactly the moderators ``account_ids`` names."""
    body = json_body()
    ids = body.get("account_ids")
    if set(body) != {"account_ids"} or not isinstance(ids, list):
        raise InputError("send account_ids, a list of moderator account ids")
    account_ids = [identifier(i, "account_ids[]") for i in ids]
    session = db()
    store.get_conversation(session, conversation_id)
    given = moderators.set_moderators(session, conversation_id, account_ids, by=signed_in().id)
    session.commit()
    return jsonify(_moderators_json(conversation_id, given))
