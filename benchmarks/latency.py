"""Service latency benchmark: from a vote's POST to the ``results`` event whose tick includes it.

    python benchmarks/latency.py                                 # vtaiwan and 100k, both databases
    python benchmarks/latency.py --cases vtaiwan --databases sqlite --votes 10
    python benchmarks/latency.py --cases vtaiwan,100k --databases sqlite,postgresql \\
        --out /tmp/latency.json

For each (case, database) the benchmark makes a fresh database (a SQLite file in a temporary
folder, or ``CREATE DATABASE polis_like_bench_<random>`` on the PostgreSQL server of
``--postgres-url``, dropped at the end), migrates it and imports the conversation (timed), then
runs the service as it is deployed: ``polis-like serve`` (gunicorn, 2 processes x 32 threads, a
free port) and ``polis-like worker`` as subprocesses, spoken to over real HTTP. Once the first
result is published it opens the ``/events`` stream (a reader thread stamps each event as its
``data:`` line arrives) and casts the measured votes one at a time, each by a new participant
(own cookie): ``GET /next``, then ``POST /votes`` on that statement. Only these votes reach the
conversation during the run, so the vote total that includes a vote is known exactly (the
previous total + 1); its latency is the time from just before the POST to the arrival of the
first event whose ``participation.votes`` reaches that total. The next vote waits for that event
and for ``--spacing`` seconds after the previous POST, so each vote is measured alone.

The 100k conversation's first result is primed (``--prime``): the service's worker cannot
publish it, because reading its 3M vote events outlasts the worker's 60 s lease and the worker
then starts over for ever (see docs/benchmarks.md). So the benchmark runs that first computation
in its own process with the worker's own code and a longer lease, and saves the state, before it
starts the services; their worker loads the state on a first, warm-up vote reported apart.

Each latency is split with the event's ``computed_ms`` and the worker's log line of that tick
("tick T, V new votes, D ms"): *to start* (POST, wake-up, and any wait for a busy worker), the
worker's *compute* (reading the new votes, the math), and *deliver* (the result's commit, the web
processes' broadcaster, the stream). Prints a markdown table; ``--out`` keeps every vote as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import synthetic  # noqa: E402  (benchmarks/ is the script's folder)

VTAIWAN = ROOT / "polis_like" / "demo" / "vtaiwan.uberx"
CASES = ("vtaiwan", "100k")
DATABASES = ("sqlite", "postgresql")
HOST = "127.0.0.1"
WORKER_LINE = re.compile(
    r"^(\S+ \S+) polis_like\.worker conversation (\d+): tick (\d+), "
    r"(\d+) new votes, (\d+) ms"
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cases = _names(args.cases, CASES, "case")
    args.prime = [] if args.prime == "none" else _names(args.prime, CASES, "case")
    databases = _names(args.databases, DATABASES, "database")
    _stop_on_sigterm()
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": machine_info(),
        "runs": [],
    }
    for case in cases:
        for database in databases:
            print(f"[{case} / {database}] load {_load()} ...", file=sys.stderr, flush=True)
            run = run_case(case, database, args)
            report["runs"].append(run)
            print(f"[{case} / {database}] {one_line(run)}", file=sys.stderr, flush=True)
            if args.out:  # keep what is done if a later case fails
                args.out.write_text(json.dumps(report, indent=1))
    report["machine"]["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0 if all(r.get("status") == "ok" for r in report["runs"]) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--cases", default=",".join(CASES), help="comma-separated among vtaiwan, 100k")
    add("--databases", default=",".join(DATABASES), help="comma-separated among sqlite, postgresql")
    add("--votes", type=int, default=30, help="measured votes per case (default: 30)")
    add(
        "--spacing",
        type=float,
        default=1.5,
        help="seconds from one vote's POST to the next at the least (default: 1.5)",
    )
    add(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the event of one vote before counting it as lost",
    )
    add(
        "--first-timeout",
        type=float,
        default=1800.0,
        help="seconds to wait for the first result (the full computation)",
    )
    add("--workers", type=int, default=2, help="web server processes (default: 2)")
    add("--threads", type=int, default=32, help="threads per web process (default: 32)")
    add(
        "--postgres-url",
        default=os.environ.get(
            "POLIS_LIKE_BENCH_POSTGRES", "postgresql://postgres@localhost:5432/postgres"
        ),
        help="the PostgreSQL server to create the benchmark databases on (from its `postgres` "
        "maintenance database; the database this URL names need not exist)",
    )
    add(
        "--prime",
        default="none",
        help="cases whose first full computation runs in this process, with the service's "
        "worker code, before the services start (default: none, the service's worker "
        "does it); the first vote then loads the saved state and is a warm-up",
    )
    add("--prime-lease", type=float, default=3600.0, help="the priming worker's lease (s)")
    add("--seed", type=int, default=0, help="seed of the synthetic conversation and the votes")
    add("--logs", type=Path, help="keep the server's and the worker's logs in this folder")
    add("--out", type=Path, help="write every measured vote as JSON")
    return parser


def _names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            sys.exit(f"unknown {what} {name!r}; choose among {', '.join(known)}")
    return names


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that the finally blocks stop the services and drop the
    database."""

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# -- one case on one database ---------------------------------------------------------------


def run_case(case: str, database: str, args: argparse.Namespace) -> dict:
    run = {
        "case": case,
        "database": database,
        "status": "error",
        "load_start": os.getloadavg(),
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    tmp = Path(tempfile.mkdtemp(prefix="polis-like-latency-"))
    pg_name = None
    services: list[subprocess.Popen] = []
    try:
        url, pg_name = fresh_database(database, args.postgres_url, tmp)
        run["database_url"] = _safe_url(url)
        run.update(prepare(case, url, args.seed))
        primed = case in args.prime
        if primed:
            run.update(prime(url, run["conversation_id"], args.prime_lease))
        env = service_env(tmp)
        port = _free_port()
        base = f"http://{HOST}:{port}"
        server_log, worker_log = tmp / "server.log", tmp / "worker.log"
        services.append(
            _start(
                [
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "--database-url",
                    url,
                ],
                env,
                server_log,
            )
        )
        worker_started = time.perf_counter()
        services.append(_start(["worker", "--database-url", url], env, worker_log))
        cid = run["conversation_id"]
        waited = _wait_first_result(
            base, cid, services, worker_started, args.first_timeout, worker_log
        )
        if not primed:
            run["first_result_by"] = "service worker"
            run["first_result_s"] = waited
        warmups, votes, stream = measure(base, cid, args, warmup=1 if primed else 0)
        run["warmup_votes"] = warmups
        run["votes"] = votes
        run["stream_reconnects"] = stream.reconnects
        ticks = worker_ticks(worker_log.read_text(errors="replace"), cid)
        if ticks and not primed:
            first = min(ticks)
            run["first_compute_ms"] = ticks[first]["ms"]
            run["first_compute_votes"] = ticks[first]["new_votes"]
        _split(warmups + votes, ticks)
        run["status"] = "ok" if all(v.get("latency_s") is not None for v in votes) else "lost"
    except KeyboardInterrupt:
        run["status"] = "interrupted"
        raise
    except Exception as error:  # report it and go on with the next case
        run["error"] = f"{type(error).__name__}: {error}"
        print(f"  failed: {run['error']}", file=sys.stderr, flush=True)
    finally:
        tear_down(run, services, tmp, args, f"{case}-{database}", pg_name)
    summarize(run)
    return run


def fresh_database(database: str, postgres_url: str, tmp: Path) -> tuple[str, str | None]:
    """A new empty database: a SQLite file in ``tmp``, or ``CREATE DATABASE`` on the server of
    ``postgres_url``. Returns its URL and, on PostgreSQL, its name (to drop it afterwards)."""
    if database == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    name = f"polis_like_bench_{secrets.token_hex(4)}"
    _pg_admin(postgres_url, f'CREATE DATABASE "{name}"')
    return _pg_url(postgres_url, name), name


def service_env(tmp: Path) -> dict:
    """The services' environment: a fresh secret key and an instance folder in ``tmp``.

    The simulated participants all come from this machine's address and vote far faster than
    people do, so the rate limits are set too wide to refuse them, but still counted: their
    cost stays in what is measured."""
    return dict(
        os.environ,
        SECRET_KEY=secrets.token_hex(32),
        POLIS_LIKE_INSTANCE=str(tmp / "var"),
        POLIS_LIKE_LIMIT_VOTES=WIDE,
        POLIS_LIKE_LIMIT_STATEMENTS=WIDE,
        POLIS_LIKE_LIMIT_JOINS="ip 1000000000/minute, conversation 1000000000/minute",
        PYTHONUNBUFFERED="1",
    )


WIDE = "participant 1000000000/minute, ip 1000000000/minute, conversation 1000000000/minute"


def tear_down(
    run: dict, services: list, tmp: Path, args: argparse.Namespace, label: str, pg_name: str | None
) -> None:
    """Stop the services; note the load and their logged errors in ``run``; keep their logs in
    ``args.logs`` (as ``<label>-server.log``...); drop the PostgreSQL database; remove ``tmp``."""
    for process in reversed(services):
        _stop(process)
    run["load_end"] = os.getloadavg()
    if services:
        run["server_errors"] = _errors(tmp / "server.log")
        run["worker_errors"] = _errors(tmp / "worker.log")
    if args.logs and services:
        args.logs.mkdir(parents=True, exist_ok=True)
        for name in ("server.log", "worker.log"):
            if (tmp / name).exists():
                shutil.copy(tmp / name, args.logs / f"{label}-{name}")
    if pg_name:
        try:
            _pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        except Exception as error:
            print(f"  could not drop {pg_name}: {error}", file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


def prepare(case: str, url: str, seed: int) -> dict:
    """Migrate the fresh database and import the case's conversation (timed)."""
    from polis_like.io import read_export
    from polis_like.storage.db import session_factory
    from polis_like.storage.migrate import ensure_current
    from polis_like.storage.transfer import import_conversation

    started = time.perf_counter()
    if case == "vtaiwan":
        conversation = read_export(VTAIWAN)
    else:
        conversation = synthetic_conversation(100_000, 1_000, seed)
    built_s = time.perf_counter() - started
    engine = ensure_current(url)
    try:
        started = time.perf_counter()
        cid = import_conversation(session_factory(engine), conversation)
        import_s = time.perf_counter() - started
    finally:
        engine.dispose()
    return {
        "conversation_id": cid,
        "participants": len(conversation.participant_ids),
        "statements": len(conversation.statements),
        "vote_events": len(conversation.votes),
        "read_or_generate_s": built_s,
        "import_s": import_s,
    }


def synthetic_conversation(n_participants: int, n_statements: int, seed: int):
    """The scale benchmark's synthetic conversation (30 votes per participant) to import."""
    from polis_like.conversation import Conversation, Statement

    events, _truth = synthetic.generate(n_participants, n_statements, 30, seed=seed)
    statements = [
        Statement(id=str(j), text=f"Synthetic statement {j}.", created_ms=synthetic.START_MS)
        for j in range(n_statements)
    ]
    return Conversation(
        summary={"topic": f"Synthetic {n_participants:,} x {n_statements:,}"},
        statements=statements,
        participant_ids=[str(i) for i in range(n_participants)],
        votes=events,
    )


def prime(url: str, cid: int, lease_s: float) -> dict:
    """The first full computation, in this process, by the service's own worker code with a
    longer lease; it publishes tick 1 and saves the state, which the service's worker loads."""
    from sqlalchemy import select

    from polis_like.storage.db import session_factory
    from polis_like.storage.migrate import ensure_current
    from polis_like.storage.models import ResultRow
    from worker.runner import Worker

    engine = ensure_current(url)
    try:
        worker = Worker(engine, lease_s=lease_s)
        started = time.perf_counter()
        computed = worker.step()
        first_s = time.perf_counter() - started
        worker.release_all()
        if computed != [cid]:
            raise RuntimeError(f"priming computed {computed}, not conversation {cid}")
        with session_factory(engine)() as session:
            duration_ms = session.scalar(
                select(ResultRow.duration_ms).where(
                    ResultRow.conversation_id == cid, ResultRow.tick == 1
                )
            )
    finally:
        engine.dispose()
    return {
        "first_result_by": f"benchmark process (Worker, lease {lease_s:.0f} s)",
        "first_result_s": first_s,
        "first_compute_ms": duration_ms,
    }


# -- the services ---------------------------------------------------------------------------


def _command() -> list[str]:
    script = Path(sys.executable).with_name("polis-like")
    return [str(script)] if script.exists() else [sys.executable, "-m", "polis_like.launcher.cli"]


def _start(arguments: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as file:  # the child keeps its own descriptor
        return subprocess.Popen(
            _command() + arguments,
            env=env,
            stdout=file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
        )


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn stops its workers, the worker saves its state), then SIGKILL to the
    process group (the child made its own session, so that is its group only)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # also any of gunicorn's workers left behind
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_first_result(
    base: str,
    cid: int,
    services: list[subprocess.Popen],
    started: float,
    timeout: float,
    worker_log: Path,
) -> float:
    """Poll ``/results`` until 200; seconds since the worker was started."""
    while True:
        for process in services:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[1]} exited with {process.returncode}")
        lost = worker_log.read_text(errors="replace").count("lost the lease")
        if lost >= 2:
            raise RuntimeError(
                f"the worker lost the lease {lost} times before publishing: its "
                f"first computation outlasts its lease (try --prime)"
            )
        try:
            status, _, _ = request(base, "GET", f"/api/v1/conversations/{cid}/results")
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass  # not listening yet
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no result after {timeout:.0f} s")
        time.sleep(0.2)


def request(
    base: str, method: str, path: str, body: dict | None = None, cookie: str | None = None
) -> tuple[int, dict, bytes]:
    """One request on a new connection: (status, headers, body)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if cookie:
            headers["Cookie"] = cookie
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, response.headers, data
    finally:
        connection.close()


# -- the event stream -----------------------------------------------------------------------


@dataclass
class Event:
    perf: float  # time.perf_counter() when its data line arrived
    wall: float  # time.time() then
    data: dict


@dataclass
class Stream:
    """Reads ``/events`` in a thread, line by line; reconnects when the server ends a stream."""

    base: str
    cid: int
    events: queue.Queue = field(default_factory=queue.Queue)
    reconnects: int = 0
    error: str | None = None

    def __post_init__(self):
        self._closed = threading.Event()
        self._connection: http.client.HTTPConnection | None = None
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-reader", daemon=True)
        self._thread.start()
        if not self._opened.wait(30):
            raise TimeoutError("the event stream did not open")

    def _run(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        last_id = None
        while not self._closed.is_set():
            try:
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                self._connection = connection
                headers = {"Accept": "text/event-stream"}
                if last_id is not None:
                    headers["Last-Event-ID"] = last_id
                connection.request(
                    "GET", f"/api/v1/conversations/{self.cid}/events", headers=headers
                )
                response = connection.getresponse()
                if response.status != 200:
                    raise RuntimeError(f"/events answered {response.status}")
                self._opened.set()
                name, data = None, []
                while True:
                    line = response.readline()
                    if not line:
                        break  # the server ended the stream (STREAM_MAX_S)
                    line = line.decode().rstrip("\r\n")
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip())
                        if name == "results":  # stamp the event as its data arrives
                            stamp = (time.perf_counter(), time.time())
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line == "":
                        if name == "results" and data:
                            self.events.put(Event(stamp[0], stamp[1], json.loads("\n".join(data))))
                        name, data = None, []
                connection.close()
            except Exception as error:  # reported with the results
                if self._closed.is_set():
                    return
                self.error = f"{type(error).__name__}: {error}"
                time.sleep(0.2)
            if not self._closed.is_set():
                self.reconnects += 1

    def next_event(self, timeout: float) -> Event | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closed.set()
        if self._connection is not None:
            try:
                self._connection.sock and self._connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._connection.close()
        self._thread.join(5)


# -- the measured votes ---------------------------------------------------------------------


def measure(
    base: str, cid: int, args: argparse.Namespace, warmup: int = 0
) -> tuple[list[dict], list[dict], Stream]:
    """Cast ``warmup`` then ``args.votes`` votes, one new participant each, and time each one's
    event; the warm-up votes (the first after the worker loads a saved state) are kept apart."""
    rng = np.random.default_rng([args.seed, 1])
    stream = Stream(base, cid)
    try:
        first = stream.next_event(30)
        if first is None:
            raise RuntimeError("the event stream sent no results event on opening")
        total = first.data["participation"]["votes"]
        records = []
        previous_t0 = -float("inf")
        for index in range(warmup + args.votes):
            wait = previous_t0 + args.spacing - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            record = one_vote(base, cid, stream, total + 1, rng, args.timeout)
            record["index"] = index - warmup
            records.append(record)
            previous_t0 = record["t0"]
            if record.get("latency_s") is not None or record.get("posted"):
                total += 1
            shown = (
                f"{record['latency_s']:.3f} s" if record.get("latency_s") is not None else "lost"
            )
            label = "warm-up" if index < warmup else f"{index - warmup + 1}/{args.votes}"
            print(
                f"  vote {label}: {shown} (POST {record['post_s'] * 1000:.0f} "
                f"ms, tick {record.get('tick')})",
                file=sys.stderr,
                flush=True,
            )
        return records[:warmup], records[warmup:], stream
    finally:
        stream.close()


def one_vote(
    base: str, cid: int, stream: Stream, expected: int, rng: np.random.Generator, timeout: float
) -> dict:
    """A new participant's GET /next and POST /votes; the latency of the event that counts it."""
    status, headers, body = request(base, "GET", f"/api/v1/conversations/{cid}/next")
    if status != 200:
        raise RuntimeError(f"/next answered {status}: {body[:200]!r}")
    jar = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        jar.load(header)
    cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
    statement = json.loads(body)["statement"]
    vote = int(rng.choice([1, 0, -1]))
    while not stream.events.empty():  # only events after this POST count
        stream.events.get_nowait()
    t0, wall0 = time.perf_counter(), time.time()
    status, _, body = request(
        base,
        "POST",
        f"/api/v1/conversations/{cid}/votes",
        {"statement_id": statement["id"], "vote": vote},
        cookie=cookie,
    )
    post_s = time.perf_counter() - t0
    record = {
        "t0": t0,
        "wall0": wall0,
        "post_s": post_s,
        "expected_votes": expected,
        "statement_id": statement["id"],
        "vote": vote,
        "posted": status == 200,
        "latency_s": None,
    }
    if status != 200:
        record["error"] = f"POST answered {status}: {body[:200]!r}"
        return record
    deadline = t0 + timeout
    while True:
        event = stream.next_event(max(0.0, deadline - time.perf_counter()))
        if event is None:
            record["error"] = f"no event with {expected} votes within {timeout:.0f} s"
            return record
        if event.data["participation"]["votes"] >= expected:
            record.update(
                latency_s=event.perf - t0,
                tick=event.data["tick"],
                event_votes=event.data["participation"]["votes"],
                computed_ms=event.data["computed_ms"],
                event_wall=event.wall,
            )
            return record


# -- where the time went --------------------------------------------------------------------


def worker_ticks(log: str, cid: int) -> dict[int, dict]:
    """tick -> {ms, new_votes} from the worker's INFO lines for the conversation."""
    ticks = {}
    for line in log.splitlines():
        match = WORKER_LINE.match(line)
        if match and int(match.group(2)) == cid:
            ticks[int(match.group(3))] = {
                "new_votes": int(match.group(4)),
                "ms": float(match.group(5)),
            }
    return ticks


def _split(votes: list[dict], ticks: dict[int, dict]) -> None:
    """Split each latency: to the worker's start, its computation, the delivery of the event."""
    for vote in votes:
        tick = ticks.get(vote.get("tick"))
        if vote.get("latency_s") is None or tick is None:
            continue
        published = vote["computed_ms"] / 1000
        compute_s = tick["ms"] / 1000
        vote["tick_new_votes"] = tick["new_votes"]
        vote["compute_s"] = compute_s
        vote["to_start_s"] = published - compute_s - vote["wall0"]
        vote["deliver_s"] = vote["event_wall"] - published


def _errors(log: Path) -> list[str]:
    """Tracebacks and warnings in a service's log (at most 20 lines)."""
    if not log.exists():
        return []
    keep = ("Traceback", "Error", "ERROR", "WARNING", "CRITICAL", "exception", "lost the lease")
    lines = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if any(word in line for word in keep)
    ]
    return lines[:20]


# -- the report -----------------------------------------------------------------------------


def summarize(run: dict) -> None:
    votes = run.get("votes") or []
    latencies = [v["latency_s"] for v in votes if v.get("latency_s") is not None]
    run["measured"] = len(latencies)
    run["lost"] = len(votes) - len(latencies)
    if latencies:
        run["latency_median_s"] = statistics.median(latencies)
        run["latency_p90_s"] = float(np.percentile(latencies, 90))
        run["latency_max_s"] = max(latencies)
    if votes:
        run["post_median_s"] = statistics.median(v["post_s"] for v in votes)
    for part in ("to_start_s", "compute_s", "deliver_s"):
        values = [v[part] for v in votes if part in v]
        if values:
            run[f"{part[:-2]}_median_s"] = statistics.median(values)
    shared = [v for v in votes if v.get("tick_new_votes", 1) > 1]
    run["ticks_with_other_votes"] = len(shared)


def _s(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _load_text(load: list[float] | tuple[float, ...] | None) -> str:
    return f"{load[0]:.1f}" if load else "–"


def one_line(run: dict) -> str:
    if run.get("status") not in ("ok", "lost"):
        return f"{run.get('status')}: {run.get('error', '')}"
    return (
        f"median {_s(run.get('latency_median_s'))}, p90 {_s(run.get('latency_p90_s'))}, "
        f"max {_s(run.get('latency_max_s'))}, POST {_s(run.get('post_median_s'))}, "
        f"first result {_s(run.get('first_result_s'))}, import {_s(run.get('import_s'))}, "
        f"lost {run.get('lost', 0)}"
    )


def markdown(report: dict) -> str:
    label = {"vtaiwan": "vtaiwan.uberx", "100k": "100,000 x 1,000"}
    out = [
        (
            "| case | database | votes | **median** | p90 | max | POST (median) | first result "
            "(worker compute) | import | load (1 min) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        name = f"{label[run['case']]} ({run.get('vote_events', 0):,} votes)"
        if run.get("status") not in ("ok", "lost"):
            out.append(
                f"| {name} | {run['database']} | {run.get('status')}: "
                f"{run.get('error', '')} | | | | | | | |"
            )
            continue
        votes = f"{run['measured']}" + (f" ({run['lost']} lost)" if run["lost"] else "")
        first = (
            f"{_s(run.get('first_result_s'))} ({_s(run['first_compute_ms'] / 1000)})"
            if run.get("first_compute_ms") is not None
            else _s(run.get("first_result_s"))
        )
        if run.get("first_result_by", "").startswith("benchmark"):
            first += " \\*"
        out.append(
            f"| {name} | {run['database']} | {votes} | **{_s(run.get('latency_median_s'))}**"
            f" | {_s(run.get('latency_p90_s'))} | {_s(run.get('latency_max_s'))} | "
            f"{_s(run.get('post_median_s'))} | {first} | {_s(run.get('import_s'))} | "
            f"{_load_text(run.get('load_start'))} to {_load_text(run.get('load_end'))} |"
        )
    if any(r.get("first_result_by", "").startswith("benchmark") for r in report["runs"]):
        out += [
            "",
            (
                "\\* primed: the first full computation ran in the benchmark process (the "
                "service's worker code with a longer lease), then the services started; their "
                "worker loaded the saved state on a warm-up vote, not counted above."
            ),
        ]
    out += [
        "",
        "Medians of each part of the latency:",
        "",
        (
            "| case | database | to the worker's start | worker compute | deliver | "
            "ticks with other votes | stream reconnects | warm-up vote |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        if run.get("status") not in ("ok", "lost"):
            continue
        out.append(
            f"| {label[run['case']]} | {run['database']} | "
            f"{_s(run.get('to_start_median_s'))} | {_s(run.get('compute_median_s'))} | "
            f"{_s(run.get('deliver_median_s'))} | {run.get('ticks_with_other_votes', 0)} |"
            f" {run.get('stream_reconnects', 0)} | {_warmup(run)} |"
        )
    return "\n".join(out)


def _warmup(run: dict) -> str:
    warmups = run.get("warmup_votes") or []
    if not warmups:
        return "–"
    vote = warmups[0]
    if vote.get("latency_s") is None:
        return "lost"
    parts = f" (compute {_s(vote['compute_s'])})" if "compute_s" in vote else ""
    return f"{_s(vote['latency_s'])}{parts}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info() -> dict:
    import numpy
    import sqlalchemy

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor(),
    )
    mem_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gb": round(mem_kb * 1024 / 1e9, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
        "kernel": platform.release(),
        "load_start": os.getloadavg(),
        "commit": commit,
    }


# -- PostgreSQL -----------------------------------------------------------------------------


def _pg_admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(_pg_url(url, "postgres"), autocommit=True) as connection:
        connection.execute(statement)


def _plain(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url(admin_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(_plain(admin_url)).set(database=name).render_as_string(hide_password=False)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
