"""Every error the API gives is JSON: ``{"error": {"status": ..., "message": ...}}``.

The status comes from the domain error itself (:mod:`polis_like.errors`); this module only
shapes the response.
"""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from polis_like.errors import PolisLikeError, Unavailable


def error_response(status: int, message: str, *, retry_after_s: int = 5):
    response = jsonify({"error": {"status": status, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="polis-like"'
    if status == 503:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(PolisLikeError)
    def domain_error(error: PolisLikeError):
        retry = error.retry_after_s if isinstance(error, Unavailable) else 5
        return error_response(error.status, str(error), retry_after_s=retry)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal error; it has been logged")
