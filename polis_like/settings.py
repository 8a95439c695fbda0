"""Every setting of the service, declared once: name, default, environment variable, help.

:class:`Settings` is the table (its fields carry the environment variable and the line of
help, and ``docs/service.md`` lists them all: a test checks it); :func:`read_settings` is the
one place that reads the environment. The web app, the launcher and the worker take a
``Settings`` instead of looking at ``os.environ`` themselves, so a setting cannot be read
in two ways or overwritten behind the user's back.

The *instance folder* holds what one installation keeps beside its database: the SQLite file,
the secret key and the demo's admin password. It never depends on the current directory, so
``polis-like serve`` started from anywhere finds the same database and key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError


def _setting(default: Any, env: str, help: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"env": env, "help": help, "parse": parse})


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise ValueError("must be more than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise ValueError("must be 0 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


#: What each rate limit may be counted per: the participant (their cookie or XID), the client's
#: address (an IPv6 address by its /64), the conversation, or the account name signed in to.
LIMIT_SCOPES = {
    "votes": ("participant", "ip", "conversation"),
    "statements": ("participant", "ip", "conversation"),
    "joins": ("ip", "conversation"),
    "signin": ("ip", "account"),
}
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RULE = re.compile(r"(\w+)\s+(\d+)\s*/\s*(\d+\s*)?(second|minute|hour|day)s?")


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests per ``seconds``, counted per ``scope``."""

    scope: str
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.scope} {self.count}/{self.seconds}s"


def _limits(action: str) -> Callable[[str], tuple[RateLimit, ...]]:
    """The parser of one action's limits: ``"participant 60/minute, ip 600/10 minutes"``, or
    ``off`` (or nothing) for none."""

    def parse(text: str) -> tuple[RateLimit, ...]:
        text = text.strip()
        if text.lower() in ("", "off"):
            return ()
        rules = []
        for part in text.split(","):
            match = _RULE.fullmatch(part.strip().lower())
            if match is None:
                raise ValueError(
                    f"{part.strip()!r} is not a limit like 'ip 600/minute' or 'participant 5/10 "
                    "minutes'"
                )
            scope, count, many, period = match.groups()
            if scope not in LIMIT_SCOPES[action]:
                raise ValueError(
                    f"{action} are counted per {', '.join(LIMIT_SCOPES[action])}, not {scope}"
                )
            seconds = int(many or 1) * _PERIODS[period]
            if int(count) <= 0 or seconds <= 0:
                raise ValueError(f"{part.strip()!r} must allow at least 1 in a period over 0")
            rules.append(RateLimit(scope, int(count), seconds))
        return tuple(rules)

    return parse


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("must be from 1 to 65535")
    return value


@dataclass(frozen=True)
class Settings:
    """The settings of one installation; ``read_settings()`` fills them in."""

    database_url: str | None = _setting(
        None,
        "DATABASE_URL",
        "The database, `sqlite:///path` or `postgresql://user@host/db`; SQLite at "
        "`INSTANCE/polis-like.db` when unset.",
    )
    instance: str | None = _setting(
        None,
        "POLIS_LIKE_INSTANCE",
        "The instance folder (SQLite database, secret key, demo admin password); "
        "`$XDG_DATA_HOME/polis-like` (else `~/.local/share/polis-like`) when unset.",
    )
    secret_key: str | None = _setting(
        None,
        "SECRET_KEY",
        "Signs the session cookies; made once and kept in `INSTANCE/secret-key` (mode 0600) "
        "when unset.",
    )
    host: str = _setting("127.0.0.1", "POLIS_LIKE_HOST", "The address `serve` and `run` listen on.")
    proxy_hops: int = _setting(
        0,
        "POLIS_LIKE_PROXY_HOPS",
        "How many reverse proxies in front of the web server to trust: the app then takes the "
        "client's address, scheme (`https`) and host from that many `X-Forwarded-For`, "
        "`-Proto` and `-Host` entries. 0 ignores those headers; never set more than there are "
        "proxies, or clients can forge them.",
        _non_negative_int,
    )
    staff_session_hours: float = _setting(
        12.0,
        "POLIS_LIKE_STAFF_SESSION_HOURS",
        "A staff sign-in (session cookie) lasts this many hours, then the account signs in "
        "again; participants' cookies are not affected.",
        _positive_float,
    )
    port: int = _setting(8000, "POLIS_LIKE_PORT", "The port `serve` and `run` listen on.", _port)
    web_workers: int = _setting(
        2, "POLIS_LIKE_WEB_WORKERS", "gunicorn processes of the web server.", _positive_int
    )
    web_threads: int = _setting(
        8,
        "POLIS_LIKE_WEB_THREADS",
        "Request threads per web process (event streams and slow clients hold none: they wait "
        "on each process's event loop).",
        _positive_int,
    )
    max_streams: int = _setting(
        5000,
        "POLIS_LIKE_MAX_STREAMS",
        "Event streams per web process; more get 503 with `Retry-After` (and the pages try "
        "again later). Each open stream takes a file descriptor: `serve` raises its limit of "
        "open files to the system's hard limit.",
        _positive_int,
    )
    header_timeout_s: float = _setting(
        10.0,
        "POLIS_LIKE_HEADER_TIMEOUT_S",
        "A client must send a request's headers, and a body of up to 256 KiB, within this many "
        "seconds of starting it; a slower one is disconnected (headers) or gets 408 (body).",
        _positive_float,
    )
    stream_max_s: float = _setting(
        300.0,
        "POLIS_LIKE_STREAM_MAX_S",
        "An event stream ends after this many seconds (the browser reconnects by itself).",
        _positive_float,
    )
    stream_ping_s: float = _setting(
        15.0,
        "POLIS_LIKE_STREAM_PING_S",
        "Seconds between keep-alives on a quiet event stream.",
        _positive_float,
    )
    max_json_bytes: int = _setting(
        64 * 1024, "POLIS_LIKE_MAX_JSON_BYTES", "The largest JSON request body.", _positive_int
    )
    max_upload_bytes: int = _setting(
        200 * 1024 * 1024,
        "POLIS_LIKE_MAX_UPLOAD_BYTES",
        "The largest request body of all (an export upload).",
        _positive_int,
    )
    sqlite_busy_s: float = _setting(
        30.0,
        "POLIS_LIKE_SQLITE_BUSY_S",
        "How long a SQLite write waits for another writer's lock before the request gets 503.",
        _positive_float,
    )
    retry_after_s: int = _setting(
        5,
        "POLIS_LIKE_RETRY_AFTER_S",
        "The `Retry-After` of a 503 while the database is unavailable.",
        _positive_int,
    )
    log_every_s: float = _setting(
        10.0,
        "POLIS_LIKE_LOG_EVERY_S",
        "A repeated error is logged once per this many seconds, with the count of those left out.",
        _positive_float,
    )
    worker_lag_s: float = _setting(
        60.0,
        "POLIS_LIKE_WORKER_LAG_S",
        "`/healthz` reports the worker as not keeping up when the "
        "oldest vote it has not read is older than this.",
        _positive_float,
    )
    worker_lease_s: float = _setting(
        60.0,
        "POLIS_LIKE_WORKER_LEASE_S",
        "How long a worker's lease on a conversation lasts without renewal.",
        _positive_float,
    )
    worker_save_s: float = _setting(
        30.0,
        "POLIS_LIKE_WORKER_SAVE_S",
        "A worker saves a conversation's math state at most this often.",
        _positive_float,
    )
    worker_idle_s: float = _setting(
        600.0,
        "POLIS_LIKE_WORKER_IDLE_S",
        "A worker lets go of a conversation idle this long.",
        _positive_float,
    )
    worker_poll_s: float = _setting(
        1.0,
        "POLIS_LIKE_WORKER_POLL_S",
        "A worker checks for work at least this often, wake-ups or not.",
        _positive_float,
    )

    worker_interval_s: float = _setting(
        1.0,
        "POLIS_LIKE_WORKER_INTERVAL_S",
        "A worker starts a conversation's next computation at least this many seconds after "
        "its last one ended: votes that arrive meanwhile go into that computation, so results "
        "are published at most this often however fast votes come (0: on every wake-up).",
        _non_negative_float,
    )
    redis_url: str | None = _setting(
        None,
        "REDIS_URL",
        "Redis (`redis://host:6379/0`) where the web processes count rate limits together; "
        "each process counts in its own memory when unset.",
    )
    limit_votes: tuple[RateLimit, ...] = _setting(
        _limits("votes")("participant 120/minute, ip 1200/minute, conversation 300000/minute"),
        "POLIS_LIKE_LIMIT_VOTES",
        "Rate limits of votes, as `scope count/period` separated by commas (scopes: "
        "participant, ip, conversation; periods: second, minute, hour, day, e.g. "
        "`ip 600/10 minutes`), or `off`.",
        _limits("votes"),
    )
    limit_statements: tuple[RateLimit, ...] = _setting(
        _limits("statements")(
            "participant 5/minute, participant 50/day, ip 30/minute, conversation 600/minute"
        ),
        "POLIS_LIKE_LIMIT_STATEMENTS",
        "Rate limits of new statements (scopes: participant, ip, conversation), or `off`.",
        _limits("statements"),
    )
    limit_joins: tuple[RateLimit, ...] = _setting(
        _limits("joins")("ip 60/minute, ip 600/day, conversation 12000/minute"),
        "POLIS_LIKE_LIMIT_JOINS",
        "Rate limits of new participants, counted when one first votes or writes (scopes: "
        "ip, conversation), or `off`.",
        _limits("joins"),
    )
    limit_signin: tuple[RateLimit, ...] = _setting(
        _limits("signin")("ip 20/minute, account 10/minute, account 100/day"),
        "POLIS_LIKE_LIMIT_SIGNIN",
        "Rate limits of staff sign-in attempts (scopes: ip, account name), or `off`.",
        _limits("signin"),
    )

    def instance_path(self) -> Path:
        """The instance folder (not created here)."""
        if self.instance:
            return Path(self.instance).expanduser().absolute()
        data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(data).absolute() / "polis-like"

    def resolved_database_url(self) -> str:
        """``database_url``, else the SQLite file in the instance folder."""
        return self.database_url or f"sqlite:///{self.instance_path() / 'polis-like.db'}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``; None values are ignored (an option not given)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def declared() -> tuple[dataclasses.Field, ...]:
    """The table of settings: each field's ``metadata`` has ``env`` and ``help``."""
    return dataclasses.fields(Settings)


def read_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then the environment, then ``overrides`` (None values ignored).

    A malformed value is an :class:`~polis_like.errors.InputError` naming its variable.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in declared():
        text = environ.get(setting.metadata["env"])
        if text is None or text == "":
            continue
        try:
            values[setting.name] = setting.metadata["parse"](text.strip())
        except ValueError as error:
            raise InputError(f"${setting.metadata['env']}={text!r}: {error}") from None
    return Settings(**values).replace(**overrides)


def secret_key(settings: Settings) -> str:
    """``settings.secret_key``, else the instance's key, made on first use (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = instance_folder(settings) / "secret-key"
    if not path.exists():
        import secrets

        # Written aside, then linked into place: web processes starting together all end up
        # with the one key that won, never with a half-written file.
        spare = path.with_name(f".secret-key.{os.getpid()}")
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(spare, path)
        except FileExistsError:
            pass
        finally:
            spare.unlink()
    return path.read_text().strip()


def instance_folder(settings: Settings) -> Path:
    """The instance folder, created (mode 0700) when missing."""
    path = settings.instance_path()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
