"""Logging that says a repeated error once per interval, with how many were left out.

During a database outage every request and every background loop fails the same way, many
times a second; logging each one buries the log (an outage once wrote 120 MB in 20 s). A
:class:`ThrottledLog` logs the first occurrence of each kind, then at most one line per
interval carrying the count of the ones it left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable


class ThrottledLog:
    """A logger wrapper that logs each ``key`` at most once per ``interval_s`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._left_out: dict[Hashable, int] = {}

    def log(
        self,
        level: int,
        key: Hashable,
        message: str,
        *args: object,
        exc_info: bool | BaseException = False,
    ) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than an interval ago.

        Returns whether it was logged. A logged line ends with the number of lines of that
        key left out since the last one, when there were any.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return False
            self._last[key] = now
            left_out = self._left_out.pop(key, 0)
            if len(self._last) > 1000:  # keys are kinds of error, but never grow without end
                self._last.pop(next(iter(self._last)))
        if left_out:
            message += f" ({left_out} more like it in the last {self.interval_s:g} s)"
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: Hashable, message: str, *args: object, **kwargs) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(logging.WARNING, key, message, *args, **kwargs)

    def error(self, key: Hashable, message: str, *args: object, **kwargs) -> bool:
        """:meth:`log` at ERROR."""
        return self.log(logging.ERROR, key, message, *args, **kwargs)

    def forget(self, key: Hashable) -> None:
        """Start ``key`` afresh (after a recovery: the next failure is news again)."""
        with self._lock:
            self._last.pop(key, None)
            self._left_out.pop(key, None)
