"""Rate limits: votes, statements, joins and sign-in attempts, counted per participant, per
client address, per conversation or per account name, refused with 429 and ``Retry-After``.

The counting is the ``limits`` library's sliding-window counter, kept in Redis when
``REDIS_URL`` is set (every web process shares the counts) and in each process's memory
otherwise. The limits themselves are settings (:data:`polis_like.settings.LIMIT_SCOPES`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time

from flask import Flask, current_app, request
from limits import RateLimitItemPerSecond
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


class Limiter:
    """Checks requests against each action's limits; one per app."""

    def __init__(self, rules: dict[str, tuple[RateLimit, ...]], storage_url: str | None):
        self.rules = {
            action: [(rule, RateLimitItemPerSecond(rule.count, rule.seconds)) for rule in limits]
            for action, limits in rules.items()
        }
        options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5} if storage_url else {}
        storage = storage_from_string(storage_url or "memory://", **options)
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._log = ThrottledLog(log)

    def check(self, action: str, **keys: object) -> None:
        """Count one ``action`` against every limit whose scope is among ``keys`` (a key of
        None is not counted); :class:`TooManyRequests` past any of them."""
        for rule, item in self.rules.get(action, ()):
            key = keys.get(rule.scope)
            if key is None:
                continue
            try:
                allowed = self._limiter.hit(item, action, rule.scope, str(key))
            except Exception as error:  # Redis down: let requests through, say so once
                self._failed(error)
                return
            if not allowed:
                reset = self._limiter.get_window_stats(item, action, rule.scope, str(key))[0]
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
        self._limiter.storage.reset()


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
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)
