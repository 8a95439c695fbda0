"""Every error the API gives is JSON: ``{"error": {"status": ..., "message": ...}}``.

The status comes from the domain error itself (:mod:`polis_like.errors`); this module only
shapes the response. The database being down, unreachable, locked past its busy timeout,
read-only or full is not a bug: :func:`outage` turns those errors into
:class:`~polis_like.errors.Unavailable` (503 with ``Retry-After`` and a message saying which),
logged once per interval rather than once per request.
"""

from __future__ import annotations

import logging

from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    render_template,
    request,
)
from sqlalchemy import exc
from werkzeug.exceptions import HTTPException

from polis_like.errors import PolisLikeError, Unavailable
from polis_like.storage.db import is_outage, refusal
from polis_like.throttle import ThrottledLog

log = logging.getLogger("polis_like.server")


def _wants_page() -> bool:
    """Whether the request is for a page (an HTML error) rather than the API (JSON)."""
    return has_request_context() and not (
        request.path.startswith("/api/") or request.path == "/healthz"
    )


def _page(status: int, message: str) -> Response:
    from flask_babel import gettext as _

    headings = {404: _("Not found"), 403: _("Not allowed"), 503: _("Please try again shortly")}
    html = render_template(
        "error.html",
        status=status,
        heading=headings.get(status, _("Something went wrong")),
        message=message,
    )
    return Response(html, status=status, mimetype="text/html")


def error_response(status: int, message: str, *, retry_after_s: int = 5):
    if _wants_page():
        response = _page(status, message)
    else:
        response = jsonify({"error": {"status": status, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="polis-like"'
    if status in (429, 503):
        response.headers["Retry-After"] = str(retry_after_s)
    return response


#: Why a database takes no writes (:func:`polis_like.storage.db.refusal`), as the API says it.
_REFUSED = {"read-only": "the database is read-only", "full": "the database's disk is full"}


def outage(error: BaseException, retry_after_s: int = 5) -> Unavailable | None:
    """The :class:`Unavailable` that a database error means, or None when it is not an outage
    (the rule is :func:`polis_like.storage.db.is_outage`)."""
    if not is_outage(error):
        return None
    refused = refusal(error)
    if refused is not None:
        return Unavailable(
            _REFUSED[refused] + "; nothing can be saved until it is fixed, reading still works",
            retry_after_s=retry_after_s,
        )
    said = str(getattr(error, "orig", None) or error)
    if isinstance(error, exc.TimeoutError) or "locked" in said or "busy" in said:
        return Unavailable("the database is busy; try again shortly", retry_after_s=retry_after_s)
    return Unavailable(
        "the database is unavailable; try again shortly", retry_after_s=retry_after_s
    )


def _reason(error: BaseException) -> str:
    """The first line of what the driver said (no traceback, no SQL)."""
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"


def _rollback() -> None:
    session = g.get("db")
    if session is not None:
        try:
            session.rollback()
        except Exception:
            pass


def throttled_log(app: Flask) -> ThrottledLog:
    """The app's :class:`ThrottledLog` (one line per kind of error per ``LOG_EVERY_S``)."""
    return app.extensions["polis_like.throttled_log"]


def register(app: Flask) -> None:
    app.extensions["polis_like.throttled_log"] = ThrottledLog(log, app.config["LOG_EVERY_S"])

    @app.errorhandler(PolisLikeError)
    def domain_error(error: PolisLikeError):
        retry = getattr(error, "retry_after_s", 5)
        return error_response(error.status, str(error), retry_after_s=retry)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.description or error.name)

    @app.errorhandler(exc.SQLAlchemyError)
    def database_error(error: exc.SQLAlchemyError):
        unavailable = outage(error, current_app.config["RETRY_AFTER_S"])
        if unavailable is None:
            return unexpected(error)
        _rollback()
        throttled_log(current_app).warning(
            ("outage", _reason(error)), "database unavailable: %s", _reason(error)
        )
        return domain_error(unavailable)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        _rollback()
        throttled_log(current_app).error(
            ("unhandled", request.endpoint, type(error).__name__),
            "unhandled error in %s",
            request.endpoint,
            exc_info=error,
        )
        return error_response(500, "internal error; it has been logged")
