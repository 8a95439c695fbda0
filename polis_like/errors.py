"""Domain errors: they know nothing of HTTP or of the command line."""

from __future__ import annotations


class PolisLikeError(Exception):
    """Base class of every error polis-like raises on purpose."""


class InputError(PolisLikeError):
    """Input that cannot be used, with where it was found (file and 1-based line)."""

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
