"""The web application: ``create_app()`` builds the Flask app that serves ``/api/v1``."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, g

from polis_like.storage.db import database_url, make_engine, session_factory

from . import errors, limits


def _secret_key(url: str) -> str:
    """``$SECRET_KEY``, else a key kept in ``var/secret-key`` (made on first use)."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = Path(os.environ.get("POLIS_LIKE_VAR", "var")) / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


def create_app(config: dict | None = None) -> Flask:
    """The app, on ``config["DATABASE_URL"]`` (else ``$DATABASE_URL``, else SQLite in var/).

    The database must be migrated (``polis-like db upgrade``).
    """
    app = Flask(__name__, static_folder=None)
    app.config.update(
        DATABASE_URL=database_url((config or {}).get("DATABASE_URL")),
        MAX_CONTENT_LENGTH=200 * 1024 * 1024,  # imports; JSON bodies are checked smaller
        MAX_JSON_BYTES=64 * 1024,
        SESSION_COOKIE_NAME="polis_like",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=365),
        JSON_SORT_KEYS=False,
        ROUTING_SEED=None,
        STREAM_MAX_S=300.0,
        STREAM_PING_S=15.0,
        MAX_STREAMS=int(os.environ.get("POLIS_LIKE_MAX_STREAMS", "200")),
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.config["DATABASE_URL"])
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["polis_like.engine"] = engine
    app.extensions["polis_like.sessions"] = session_factory(engine)

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.after_request
    def no_sniffing(response: Response) -> Response:
        # A browser must not read a JSON error or a CSV export as HTML or script.
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    errors.register(app)
    limits.init_app(app)  # before the blueprints: their routes use its ``id`` converter
    from .api import blueprint as api
    from .pages import blueprint as pages

    app.register_blueprint(api)
    app.register_blueprint(pages)
    return app
