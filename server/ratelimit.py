"""Rate limits: votes, statements, joins and sign-in attempts, counted per participant, per
client address, per conversation or per account name, refused with 429 and ``Retry-After``.

The counting is a sliding-window counter: the ``limits`` library's, kept in Redis, when
``REDIS_URL`` is set (every web process shares the counts), else :class:`LocalCounts` in each
process's memory. The limits themselves are settings (:data:`polis_like.settings.LIMIT_SCOPES`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import threading
import time
from typing import Protocol

from flask import Flask, current_app, request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from polis_like.errors import TooManyRequests
from polis_like.settings import RateLimit, Settings
from polis_like.throttle import ThrottledLog

log = logging.getLogger(__name__)

_WHAT = {
    "votes": "votes",
    "statements": "new statements",
    "joins": "new participants",
    "signin": "sign-in attempts",
}
_PER = {
    "participant": "from this participant",
    "ip": "from this network address",
    "conversation": "in this conversation",
    "account": "for this account",
}


class Counts(Protocol):
    """What :class:`Limiter` needs of a counter: ``limits``' ``SlidingWindowCounterRateLimiter``
    has it, and so does :class:`LocalCounts`."""

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]: ...


class LocalCounts:
    """Sliding-window counts in this process's memory, by the arithmetic of ``limits``'
    sliding-window counter: the count of the current window, plus the previous window's
    weighted by how much of it still overlaps the last ``expiry`` seconds.

    ``limits``' own memory storage starts a thread every 10 ms while counts change, and each
    walks every key (every participant seen in the last minutes): CPU taken from the requests
    of the process. Here the hits drop stale windows themselves, in a sweep at most every
    :attr:`SWEEP_S`.
    """

    SWEEP_S = 10.0

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> [expiry (s), window number, previous window's count, current window's count]
        self._windows: dict[str, list] = {}
        self._swept = clock()

    def _window(self, key: str, expiry: int, now: float) -> list:
        number = int(now // expiry)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = [expiry, number, 0, 0]
        elif window[1] != number:  # the window moved on: one step keeps the count as previous
            window[2] = window[3] if window[1] == number - 1 else 0
            window[1], window[3] = number, 0
        return window

    def _weighted(self, window: list, now: float) -> float:
        expiry, _, previous, current = window
        return previous * (1 - (now / expiry) % 1) + current

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one hit of ``item`` unless that would pass its limit; whether it counted."""
        now = self._clock()
        key, expiry = item.key_for(*identifiers), item.get_expiry()
        with self._lock:
            if now - self._swept >= self.SWEEP_S:
                self._sweep(now)
            window = self._window(key, expiry, now)
            if math.floor(self._weighted(window, now)) + 1 > item.amount:
                return False
            window[3] += 1
            return True

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        """(when the next hit may count, as a Unix time; how many hits are left)."""
        now = self._clock()
        key, expiry = item.key_for(*identifiers), item.get_expiry()
        with self._lock:
            window = self._window(key, expiry, now)
            _, _, previous, current = window
            left = max(0, item.amount - math.floor(self._weighted(window, now)))
            if not (previous or current):
                return now, left
            ends_in = (1 - (now / expiry) % 1) * expiry  # the current window's end
            waits = [ends_in] if current else []
            if previous:  # the previous window's weight loses a hit every expiry/previous s
                waits.append(ends_in % (expiry / previous))
            return now + min(waits), left

    def _sweep(self, now: float) -> None:
        self._swept = now
        stale = [
            key
            for key, (expiry, number, _, _) in self._windows.items()
            if number < int(now // expiry) - 1
        ]
        for key in stale:
            del self._windows[key]

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._windows.clear()


class Limiter:
    """Checks requests against each action's limits; one per app."""

    def __init__(self, rules: dict[str, tuple[RateLimit, ...]], storage_url: str | None):
        self.rules = {
            action: [(rule, RateLimitItemPerSecond(rule.count, rule.seconds)) for rule in limits]
            for action, limits in rules.items()
        }
        self._counts: Counts
        if storage_url:
            options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            shared = storage_from_string(storage_url, **options)
            self._counts, self._forget = SlidingWindowCounterRateLimiter(shared), shared.reset
        else:
            local = LocalCounts()
            self._counts, self._forget = local, local.reset
        self._log = ThrottledLog(log)

    def check(self, action: str, **keys: object) -> None:
        """Count one ``action`` against every limit whose scope is among ``keys`` (a key of
        None is not counted); :class:`TooManyRequests` past any of them."""
        for rule, item in self.rules.get(action, ()):
            key = keys.get(rule.scope)
            if key is None:
                continue
            try:
                allowed = self._counts.hit(item, action, rule.scope, str(key))
            except Exception as error:  # Redis down: let requests through, say so once
                self._failed(error)
                return
            if not allowed:
                reset = self._counts.get_window_stats(item, action, rule.scope, str(key))[0]
                wait = max(1, math.ceil(reset - time.time()))
                raise TooManyRequests(
                    f"too many {_WHAT[action]} {_PER[rule.scope]}: at most {rule.count} in "
                    f"{_period(rule.seconds)}; try again in {wait} s",
                    retry_after_s=wait,
                )

    def _failed(self, error: Exception) -> None:
        self._log.warning(
            ("rate limits", type(error).__name__),
            "rate limits not counted (%s: %s); requests are let through until the store is back",
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )

    def reset(self) -> None:
        """Forget every count (tests; an admin after a false alarm)."""
        self._forget()


def _period(seconds: int) -> str:
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            many = seconds // size
            return f"a {name}" if many == 1 else f"{many} {name}s"
    return "a second" if seconds == 1 else f"{seconds} seconds"


def init_app(app: Flask, settings: Settings) -> None:
    """Give ``app`` its limiter; ``RATE_LIMITS`` in the config (``False``: none) overrides."""
    rules = {
        "votes": settings.limit_votes,
        "statements": settings.limit_statements,
        "joins": settings.limit_joins,
        "signin": settings.limit_signin,
    }
    configured = app.config.get("RATE_LIMITS")
    if configured is False:
        rules = {}
    elif configured is not None:
        rules |= configured
    app.extensions["polis_like.limiter"] = Limiter(rules, settings.redis_url)


def limiter() -> Limiter:
    """The current app's :class:`Limiter`."""
    return current_app.extensions["polis_like.limiter"]


def client_address() -> str:
    """The client's network address as limits count it: an IPv6 address by its /64 (one
    household or phone gets a whole /64), IPv4 as it is."""
    return _counted_address(request.remote_addr or "")


@functools.lru_cache(maxsize=4096)
def _counted_address(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)
