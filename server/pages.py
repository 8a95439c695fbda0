"""The front page. The participant, moderator and dashboard pages come with the pages issue."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def index():
    return jsonify({
        "service": "polis-like",
        "api": url_for("api.conversations.list_conversations", _external=False),
        "openapi": url_for("api.openapi", _external=False),
    })


@blueprint.get("/healthz")
def health():
    return jsonify({"ok": True})
