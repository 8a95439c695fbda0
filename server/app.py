"""The web application: ``create_app()`` builds the Flask app that serves ``/api/v1``."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, g
from werkzeug.middleware.proxy_fix import ProxyFix

from polis_like.settings import Settings, read_settings, secret_key
from polis_like.storage.db import database_url, make_engine, session_factory

from . import compress, errors, i18n, limits, ratelimit
from .cookies import SessionCookies


def _defaults(settings: Settings) -> dict:
    """The Flask configuration the settings give (before a test's overrides)."""
    return {
        "DATABASE_URL": settings.resolved_database_url(),
        "MAX_CONTENT_LENGTH": settings.max_upload_bytes,  # imports; JSON bodies are checked smaller
        "MAX_JSON_BYTES": settings.max_json_bytes,
        "MAX_STREAMS": settings.max_streams,
        "STREAM_MAX_S": settings.stream_max_s,
        "STREAM_PING_S": settings.stream_ping_s,
        "SQLITE_BUSY_S": settings.sqlite_busy_s,
        "RETRY_AFTER_S": settings.retry_after_s,
        "LOG_EVERY_S": settings.log_every_s,
        "WORKER_LAG_S": settings.worker_lag_s,
        "PROXY_HOPS": settings.proxy_hops,
        "STAFF_SESSION_HOURS": settings.staff_session_hours,
    }


def create_app(config: dict | None = None, settings: Settings | None = None) -> Flask:
    """The app: the settings' defaults (``settings``, else :func:`read_settings`), then ``config``.

    ``config`` is Flask configuration (``DATABASE_URL``, ``SECRET_KEY``, ``MAX_STREAMS``...), for
    tests. The database must be migrated (``polis-like db upgrade``).
    """
    settings = settings or read_settings()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        _defaults(settings),
        SESSION_COOKIE_NAME="polis_like",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A participant keeps their identity for a long conversation; a staff sign-in in the
        # same cookie ends after STAFF_SESSION_HOURS, checked on the server (api/common.py).
        PERMANENT_SESSION_LIFETIME=timedelta(days=365),
        JSON_SORT_KEYS=False,
        ROUTING_SEED=None,
    )
    app.session_interface = SessionCookies()
    app.config.update(config or {})
    app.config["DATABASE_URL"] = database_url(app.config["DATABASE_URL"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(settings)
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        # The client's address, scheme and host as the proxies saw them: request.is_secure
        # (so Secure cookies), remote_addr and external URLs. Not X-Forwarded-Prefix: the pages
        # link to absolute paths, so the service lives at the root of its host.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the default provider has them
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    engine = make_engine(app.config["DATABASE_URL"], sqlite_busy_s=app.config["SQLITE_BUSY_S"])
    app.extensions["polis_like.engine"] = engine
    app.extensions["polis_like.sessions"] = session_factory(engine)

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    compress.init_app(app)  # the first after_request registered runs last, on the final body

    @app.after_request
    def no_sniffing(response: Response) -> Response:
        # A browser must not read a JSON error or a CSV export as HTML or script.
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    errors.register(app)
    ratelimit.init_app(app, settings)
    limits.init_app(app)  # before the blueprints: their routes use its ``id`` converter
    i18n.init_app(app)
    from .api import blueprint as api
    from .pages import blueprint as pages
    from .web import blueprint as web

    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(web)
    return app
