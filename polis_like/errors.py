"""Domain errors: every error polis-like raises on purpose, each with the HTTP status it means.

They know nothing of Flask or of the command line: ``server/errors.py`` turns ``status`` into a
JSON response, and the command line prints the message on one line and exits with status 2.
"""

from __future__ import annotations


class PolisLikeError(Exception):
    """Base class of every error polis-like raises on purpose."""

    #: The HTTP status of this kind of error.
    status = 500


class InputError(PolisLikeError):
    """Input that cannot be used, with where it was found (file and 1-based line): 400."""

    status = 400

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class Unauthorized(InputError):
    """Sign-in needed, or the credentials are wrong: 401."""

    status = 401


class Forbidden(InputError):
    """Not allowed (banned, conversation closed, XID missing, not an admin): 403."""

    status = 403


class NotFound(InputError):
    """No such conversation, statement, participant or account: 404."""

    status = 404


class Conflict(InputError):
    """The request clashes with stored data (a duplicate statement, say): 409."""

    status = 409


class TooLarge(InputError):
    """A body, upload or archive over its limit: 413."""

    status = 413


class UnsupportedMedia(InputError):
    """A body that is not of the content type the route takes: 415."""

    status = 415


class TooManyRequests(InputError):
    """Over a rate limit (votes, statements, joins or sign-ins too fast): 429, and when to
    try again."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(PolisLikeError):
    """Try again later (the database is down or busy, no room for a stream): 503."""

    status = 503

    def __init__(self, message: str, *, retry_after_s: int = 5):
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(message)
