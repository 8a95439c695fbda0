"""Every error the API gives is JSON: ``{"error": {"status": ..., "message": ...}}``."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from polis_like.errors import InputError
from polis_like.storage.conversations import Conflict, NotFound
from polis_like.storage.votes import Forbidden


class Unauthorized(InputError):
    """Sign-in needed: HTTP 401."""


class Unavailable(InputError):
    """Try again later: HTTP 503."""


STATUS = [(NotFound, 404), (Conflict, 409), (Forbidden, 403), (Unauthorized, 401),
          (Unavailable, 503), (InputError, 400)]


def error_response(status: int, message: str):
    response = jsonify({"error": {"status": status, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="polis-like"'
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def register(app: Flask) -> None:
    @app.errorhandler(InputError)
    def input_error(error: InputError):
        status = next(code for kind, code in STATUS if isinstance(error, kind))
        return error_response(status, str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal error; it has been logged")
