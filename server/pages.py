"""The front page and the health check. The participant, moderator and dashboard pages come
with the pages issue."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, url_for
from sqlalchemy.exc import SQLAlchemyError

from polis_like.storage import health as store

from .errors import error_response, outage

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def index():
    return jsonify(
        {
            "service": "polis-like",
            "api": url_for("api.conversations.list_conversations", _external=False),
            "openapi": url_for("api.openapi", _external=False),
        }
    )


@blueprint.get("/healthz")
def health():
    """200 while the database answers (``worker.ok`` says whether the worker keeps up), else 503.

    A worker that falls behind does not make the web processes unhealthy: they still take votes.
    """
    config = current_app.config
    try:
        with current_app.extensions["polis_like.sessions"]() as session:
            store.ping(session)
            lag_s = store.worker_lag_s(session)
    except SQLAlchemyError as error:
        unavailable = outage(error, config["RETRY_AFTER_S"])
        if unavailable is None:
            raise
        response = error_response(503, str(unavailable), retry_after_s=unavailable.retry_after_s)
        response.set_data(
            current_app.json.dumps(
                {
                    "database": "unavailable",
                    "worker": None,
                    "error": {"status": 503, "message": str(unavailable)},
                }
            )
        )
        return response
    return jsonify(
        {
            "database": "ok",
            "worker": {"lag_s": round(lag_s, 3), "ok": lag_s <= config["WORKER_LAG_S"]},
        }
    )
