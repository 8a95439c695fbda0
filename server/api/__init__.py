"""The JSON API under ``/api/v1``; its OpenAPI document is served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from flask import Blueprint, jsonify

from . import (
    accounts,
    conversations,
    events,
    moderation,
    participation,
    results,
    session,
    transfer,
    watching,
)
from .openapi import document

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
for module in (
    accounts,
    conversations,
    participation,
    moderation,
    results,
    events,
    session,
    transfer,
    watching,
):
    blueprint.register_blueprint(module.blueprint)


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(document())
