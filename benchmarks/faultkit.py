"""What the fault scenarios of ``benchmarks/faults.py`` are made of: participants voting in a
thread, a PostgreSQL server of their own, the worker's log read as spans of computation, and
the database counted against what was acknowledged.

The participants are ``load.py``'s (its HTTP client and cookie jar), with two differences: they
vote at a small, steady pace, and one whose vote gets no 200 leaves and a new participant takes
the place, so that no vote is ever sent twice and "stored twice" can only be the service's doing.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import random
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import latency
import load

HOST = latency.HOST


# -- participants ------------------------------------------------------------------------------


@dataclass
class Answer:
    """A request that did not get a 200."""

    at: float  # time.time()
    what: str  # "next" or "vote"
    status: int | None  # None: no HTTP answer (``kind`` says why)
    kind: str
    retry_after: str | None = None
    message: str | None = None


@dataclass
class Votes:
    """What the participants saw: each acknowledged vote and each other answer."""

    acknowledged: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    def acked(self) -> list[tuple[int, int, int, int]]:
        """(conversation, pid, sid, vote) of every acknowledged vote."""
        return [(c, p, s, v) for c, p, s, v, _ in self.acknowledged]


async def participant(ports, cids, votes: Votes, stop: asyncio.Event, rng, pause_s: float):
    """Participants one after another on one connection per port, until ``stop``."""
    connections = {port: load.Connection(port, timeout=30.0) for port in ports}

    async def ask(port, method, path, body=None, cookie=None, what="vote"):
        try:
            return await connections[port].request(method, path, body, cookie)
        except load.HTTPError as error:
            votes.answers.append(Answer(time.time(), what, None, error.kind))
            return None

    def refused(what, status, headers, data) -> float:
        try:
            message = json.loads(data)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = data[:200].decode(errors="replace")
        retry = headers.get("retry-after")
        votes.answers.append(Answer(time.time(), what, status, f"HTTP {status}", retry, message))
        return min(float(retry or 0.2), 1.0)  # keep trying through an outage

    try:
        while not stop.is_set():
            port, cid = rng.choice(ports), rng.choice(cids)
            base = f"/api/v1/conversations/{cid}"
            jar: dict[str, str] = {}
            answer = await ask(port, "GET", f"{base}/next", what="next")
            if answer is None:
                await asyncio.sleep(0.2)
                continue
            status, headers, cookies, data = answer
            if status != 200:
                await asyncio.sleep(refused("next", status, headers, data))
                continue
            load._cookie(cookies, jar)
            statement = json.loads(data)["statement"]
            while statement is not None and not stop.is_set() and cid in cids:
                await asyncio.sleep(pause_s)
                value = rng.choice(load.VOTE_VALUES)
                body = json.dumps({"statement_id": statement["id"], "vote": value}).encode()
                answer = await ask(port, "POST", f"{base}/votes", body, load._jar(jar))
                if answer is None:
                    break  # leave: the vote may or may not be stored, it is not sent again
                status, headers, cookies, data = answer
                if status != 200:
                    await asyncio.sleep(refused("vote", status, headers, data))
                    break
                load._cookie(cookies, jar)
                reply = json.loads(data)
                votes.acknowledged.append(
                    (cid, reply["participant"], statement["id"], value, time.time())
                )
                statement = reply["statement"]
    finally:
        for connection in connections.values():
            await connection.close()


class Load:
    """``n`` participants voting in a thread of their own (its own asyncio loop), so that the
    scenario can do its harm meanwhile: ``start()``, then ``stop()`` returns the :class:`Votes`.
    The conversations voted on may change meanwhile (``cids[:] = ...``): a participant in one
    no longer listed leaves."""

    def __init__(self, ports, cids, n: int = 4, pause_s: float = 0.05, seed: int = 0):
        self.ports, self.cids, self.n, self.pause_s = list(ports), list(cids), n, pause_s
        self.rng = random.Random(seed)
        self.votes = Votes()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> Load:
        self._thread.start()
        self._ready.wait(10)
        return self

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        rngs = [random.Random(self.rng.random()) for _ in range(self.n)]
        tasks = [
            asyncio.create_task(
                participant(self.ports, self.cids, self.votes, self._stop, rng, self.pause_s)
            )
            for rng in rngs
        ]
        self._ready.set()
        await self._stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> Votes:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        return self.votes


# -- the database, counted -----------------------------------------------------------------------


def _engine(url: str):
    from sqlalchemy import create_engine

    from polis_like.storage.db import database_url

    return create_engine(database_url(url))


def last_event_id(url: str) -> int:
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT coalesce(max(id), 0) FROM vote_events"))
    finally:
        engine.dispose()


def count_votes(url: str, mark: int, acknowledged: list[tuple[int, int, int, int]]) -> dict:
    """Every acknowledged vote stored exactly once: the events past ``mark`` against them."""
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT conversation_id, pid, sid, vote FROM vote_events WHERE id > :m"),
                {"m": mark},
            ).all()
    finally:
        engine.dispose()
    stored = Counter(tuple(int(x) for x in row) for row in rows)
    expected = Counter(acknowledged)
    pairs = Counter(row[:3] for row in stored.elements())
    return {
        "acknowledged": len(acknowledged),
        "stored": len(rows),
        "lost": sum((expected - stored).values()),
        "stored_twice": sum(n - 1 for n in pairs.values() if n > 1),
        # answered with an error, yet committed (the answer was lost on the way): not an error
        "unacknowledged_stored": sum((stored - expected).values()),
    }


def stored_totals(url: str, cids) -> dict[int, int]:
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return {
                cid: connection.scalar(
                    text("SELECT count(*) FROM vote_events WHERE conversation_id = :c"),
                    {"c": cid},
                )
                for cid in cids
            }
    finally:
        engine.dispose()


def job(url: str, cid: int) -> dict:
    """The conversation's ``math_jobs`` row: tick, owner, lease_until."""
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT tick, owner, lease_until FROM math_jobs WHERE conversation_id = :c"),
                {"c": cid},
            ).one()
    finally:
        engine.dispose()
    return {"tick": row[0], "owner": row[1], "lease_until": row[2]}


def results_votes(base: str, cid: int) -> int | None:
    try:
        status, _, data = latency.request(base, "GET", f"/api/v1/conversations/{cid}/results")
    except OSError:
        return None
    return json.loads(data)["participation"]["votes"] if status == 200 else None


def catch_up(base: str, url: str, cids, timeout_s: float = 120.0) -> dict:
    """Wait until each conversation's published result counts exactly its stored votes."""
    totals = stored_totals(url, cids)
    started, seen = time.monotonic(), {}
    while time.monotonic() - started < timeout_s:
        seen = {cid: results_votes(base, cid) for cid in cids}
        if seen == totals:
            return {"stored": totals, "results": seen, "seconds": time.monotonic() - started}
        time.sleep(0.25)
    return {"stored": totals, "results": seen, "seconds": None}


class LagSampler:
    """How far behind the votes each conversation's results are, sampled every ``every_s`` in a
    thread: the age of its oldest vote not in its latest result (what ``/healthz`` reports);
    on PostgreSQL also the transactions open longer than a second (they hold reading back)."""

    def __init__(self, url: str, cids, every_s: float = 0.5):
        self.url, self.cids, self.every_s = url, list(cids), every_s
        self.worst: dict[int, float] = dict.fromkeys(self.cids, 0.0)
        self.long_transactions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.orm import Session

        from polis_like.storage.health import worker_lag_s

        engine = _engine(self.url)
        try:
            while not self._stop.wait(self.every_s):
                with Session(engine) as session:
                    for cid in self.cids:
                        lag = worker_lag_s(session, conversation_id=cid)
                        self.worst[cid] = max(self.worst[cid], lag)
                    if engine.dialect.name == "postgresql":
                        self.long_transactions += session.scalars(text(_LONG)).all()
        finally:
            engine.dispose()

    def stop(self) -> dict[int, float]:
        self._stop.set()
        self._thread.join(30)
        return self.worst


# Any database's: transaction ids, and so snapshots, are the server's, not one database's.
_LONG = (
    "SELECT format('%s s in %s, %s (%s): %s', "
    "round(extract(epoch FROM now() - xact_start)::numeric, 1), datname, state, "
    "coalesce(wait_event, 'running'), left(query, 80)) FROM pg_stat_activity "
    "WHERE backend_xid IS NOT NULL AND now() - xact_start > interval '1 second' "
    "AND pid <> pg_backend_pid()"
)


def sqlite_integrity(url: str) -> str:
    import sqlite3

    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


# -- the worker's log ------------------------------------------------------------------------------

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) polis_like\.worker (.*)$")
_START = re.compile(r"conversation (\d+): computing$")
_ENDS = (
    re.compile(r"conversation (\d+): tick (\d+),"),
    re.compile(r"lost the lease of conversation (\d+)"),
    re.compile(r"conversation (\d+) failed"),
)


@dataclass
class Span:
    """One computation in a worker's log; ``end`` None while it runs (or when killed)."""

    cid: int
    start: float
    end: float | None = None
    tick: int | None = None


def _time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local, as logged


def read_log(path: Path) -> tuple[str | None, list[Span], float | None]:
    """The worker's name, its computations, and the time of its last line."""
    name, spans, last = None, [], None
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        at, said = _time(match.group(1)), match.group(2)
        last = at
        if said.startswith("worker ") and said.endswith(" started"):
            name = said.split()[1]
        elif started := _START.match(said):
            spans.append(Span(int(started.group(1)), at))
        else:
            for pattern in _ENDS:
                ended = pattern.match(said) or pattern.search(said)
                if ended:
                    cid = int(ended.group(1))
                    for span in reversed(spans):
                        if span.cid == cid and span.end is None:
                            span.end = at
                            if pattern is _ENDS[0]:
                                span.tick = int(ended.group(2))
                            break
                    break
    return name, spans, last


def overlaps(logs: dict[str, Path]) -> list[str]:
    """Times two workers computed one conversation at once (a span still open counts to the
    last line of its log)."""
    spans = []
    for label, path in logs.items():
        _, found, last = read_log(path)
        spans += [(label, s.cid, s.start, s.end if s.end is not None else last) for s in found]
    found = []
    for i, (a, cid, start, end) in enumerate(spans):
        for b, other, start2, end2 in spans[i + 1 :]:
            if a != b and cid == other and start < end2 and start2 < end:
                found.append(
                    f"conversation {cid}: {a} {start:.3f}-{end:.3f}, {b} {start2:.3f}-{end2:.3f}"
                )
    return found


def tracebacks(*paths: Path) -> list[str]:
    return [p.name for p in paths if p.exists() and "Traceback" in p.read_text(errors="replace")]


# -- a PostgreSQL server of our own ----------------------------------------------------------------


def postgres_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: on the PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise RuntimeError(
            "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
        )
    return versions[-1].parent


class PrivatePostgres:
    """A PostgreSQL server in a folder of its own, on a free port, which a scenario may stop
    and start. As root, it runs as the ``postgres`` account (initdb refuses root)."""

    def __init__(self, folder: Path):
        self.bin = postgres_bindir()
        self.folder, self.port = folder / "postgres", latency._free_port()
        self.folder.mkdir(parents=True)
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            folder.chmod(folder.stat().st_mode | 0o111)  # it may pass through to its own
            self.prefix = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}"]
            self.prefix += ["--init-groups"]
        self._run(
            "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        self.running = False

    @property
    def data(self) -> str:
        return str(self.folder / "data")

    def _run(self, tool: str, *arguments: str) -> None:
        command = [*self.prefix, str(self.bin / tool), *arguments]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip()[-500:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c fsync=off "
            "-c max_connections=200"
        )
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", self.data, "-l", log, "-o", options, "-w", "-t", "120", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "120", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def close(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except RuntimeError:
                pass
