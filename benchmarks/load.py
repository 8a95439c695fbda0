"""Load benchmark: many participants voting at once over real HTTP, and what got stored.

    python benchmarks/load.py                                    # both databases, 8, 64, 256
    python benchmarks/load.py --databases sqlite --concurrency 64 --duration 10
    python benchmarks/load.py --out /tmp/load.json --logs /tmp/load-logs

For each database the benchmark makes a fresh one (a SQLite file in a temporary folder, or
``CREATE DATABASE polis_like_bench_<random>`` on the PostgreSQL server of ``--postgres-url``,
dropped at the end), imports the demo conversation (vtaiwan.uberx: 197 statements) and runs the
service as deployed: ``polis-like serve`` (gunicorn with the service's default processes and
threads, unless ``--workers``/``--threads`` say otherwise) and ``polis-like worker``, as
subprocesses on a free port.

Then, for each concurrency N, N simulated participants, each with its own connection and its
own cookie, do what the participant page does: ``GET /next``, then ``POST /votes`` on the
statement shown (a random agree / disagree / pass), whose answer carries the next statement, and
so on; a participant who has seen every statement leaves and a new one (a new cookie) takes
their place. After ``--warmup`` seconds the votes of ``--duration`` seconds are counted: votes
per second, the latency of each ``POST /votes`` (p50 / p95 / p99), and errors by kind (HTTP
status, refused or reset connections, timeouts). In the same run, N clients then ask
``GET /healthz`` for the same time: the rate the server answers its cheapest route at.

At the end the database is counted: every acknowledged vote (a 200 answer) must be stored
exactly once (the vote events added during the run equal the acknowledged votes, each
(participant, statement) of the run once, with the acknowledged value), and the published
results must catch up (``participation.votes`` in ``/results`` reaching the stored total;
the time it took is reported).

The load generator is one asyncio process with its own small HTTP/1.1 client (keep-alive, one
connection per participant); it runs on the same 2-core machine as the server, the worker and
the database, and its own CPU time is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import latency  # noqa: E402  (the service set-up it shares: databases, processes, ports)

DATABASES = ("sqlite", "postgresql")
CONCURRENCY = (8, 64, 256)
HOST = latency.HOST
VOTE_VALUES = (1, 1, -1, 0)  # agree a little more often than disagree or pass, as people do


# -- a small HTTP/1.1 client ----------------------------------------------------------------


class HTTPError(Exception):
    """A request that did not get an HTTP answer; ``kind`` names why."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class Connection:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, cookie: str | None = None
    ) -> tuple[int, dict[str, str], list[str], bytes]:
        """(status, headers, Set-Cookie values, body)."""
        try:
            return await asyncio.wait_for(self._request(method, path, body, cookie), self.timeout)
        except TimeoutError:
            await self.close()
            raise HTTPError("timeout") from None
        except ConnectionRefusedError:
            await self.close()
            raise HTTPError("refused") from None
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            await self.close()
            raise HTTPError("connection lost") from None

    async def _request(self, method, path, body, cookie):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {HOST}:{self.port}",
            "Accept: application/json",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        assert self.reader is not None
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        cookies: list[str] = []
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            headers[name] = value
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked()
        else:
            data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, cookies, data

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


# -- the participants -----------------------------------------------------------------------


@dataclass
class Tally:
    """What one load phase saw."""

    counting: bool = False
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    acknowledged: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, sid, vote)
    participants: int = 0
    retries_after: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        if self.counting:
            self.errors[kind] += 1


def _cookie(values: list[str], jar: dict[str, str]) -> None:
    for value in values:
        parsed = SimpleCookie()
        parsed.load(value)
        for name, morsel in parsed.items():
            jar[name] = morsel.value


def _jar(jar: dict[str, str]) -> str | None:
    return "; ".join(f"{k}={v}" for k, v in jar.items()) or None


async def participant(port: int, cid: int, tally: Tally, stop: asyncio.Event, rng, timeout):
    """One simulated participant after another on one connection, until ``stop``."""
    connection = Connection(port, timeout)
    base = f"/api/v1/conversations/{cid}"
    try:
        while not stop.is_set():
            jar: dict[str, str] = {}
            tally.participants += 1
            statement = None
            try:
                status, _, cookies, data = await connection.request("GET", f"{base}/next")
            except HTTPError as error:
                tally.error(f"next: {error.kind}")
                await asyncio.sleep(0.1)
                continue
            if status != 200:
                tally.error(f"next: HTTP {status}")
                await asyncio.sleep(0.1)
                continue
            _cookie(cookies, jar)
            statement = json.loads(data)["statement"]
            while statement is not None and not stop.is_set():
                value = rng.choice(VOTE_VALUES)
                body = json.dumps({"statement_id": statement["id"], "vote": value}).encode()
                started = time.perf_counter()
                try:
                    status, headers, cookies, data = await connection.request(
                        "POST", f"{base}/votes", body, _jar(jar)
                    )
                except HTTPError as error:
                    tally.error(f"vote: {error.kind}")
                    await asyncio.sleep(0.05)
                    continue
                elapsed = time.perf_counter() - started
                _cookie(cookies, jar)
                if status != 200:
                    tally.error(f"vote: HTTP {status}")
                    wait = float(headers.get("retry-after", "0.05") or 0.05)
                    tally.retries_after.append(wait)
                    await asyncio.sleep(min(wait, 5.0))
                    continue
                answer = json.loads(data)
                # acknowledged: stored whether or not this phase counts it
                tally.acknowledged.append((answer["participant"], statement["id"], value))
                if tally.counting:
                    tally.latencies.append(elapsed)
                statement = answer["statement"]
    finally:
        await connection.close()


async def health_client(port: int, tally: Tally, stop: asyncio.Event, timeout: float):
    connection = Connection(port, timeout)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status, _, _, _ = await connection.request("GET", "/healthz")
            except HTTPError as error:
                tally.error(error.kind)
                await asyncio.sleep(0.05)
                continue
            if tally.counting:
                if status == 200:
                    tally.latencies.append(time.perf_counter() - started)
                else:
                    tally.error(f"HTTP {status}")
    finally:
        await connection.close()


async def phase(make, n: int, warmup: float, duration: float) -> tuple[Tally, float, float]:
    """Run ``n`` clients; count ``duration`` seconds after ``warmup``. Returns the tally, the
    counted seconds and the load generator's CPU seconds in them."""
    tally, stop = Tally(), asyncio.Event()
    tasks = [asyncio.create_task(make(i, tally, stop)) for i in range(n)]
    await asyncio.sleep(warmup)
    tally.counting = True
    cpu_start, started = _cpu(), time.perf_counter()
    await asyncio.sleep(duration)
    tally.counting = False
    counted, cpu = time.perf_counter() - started, _cpu() - cpu_start
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally, counted, cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(tally: Tally, seconds: float, cpu: float) -> dict:
    latencies = sorted(tally.latencies)

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "count": len(latencies),
        "per_s": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": _ms(pct(0.50)),
        "p95_ms": _ms(pct(0.95)),
        "p99_ms": _ms(pct(0.99)),
        "mean_ms": _ms(statistics.fmean(latencies)) if latencies else None,
        "errors": dict(tally.errors),
        "generator_cpu_s": cpu,
        "seconds": seconds,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# -- one database ---------------------------------------------------------------------------


def run_database(database: str, args: argparse.Namespace) -> dict:
    run: dict = {
        "database": database,
        "status": "error",
        "started": datetime.now().isoformat(timespec="seconds"),
        "load_start": os.getloadavg(),
        "levels": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="polis-like-load-"))
    pg_name = None
    services: list = []
    try:
        url, pg_name = latency.fresh_database(database, args.postgres_url, tmp)
        run["database_url"] = latency._safe_url(url)
        run.update(latency.prepare("vtaiwan", url, args.seed))
        cid = run["conversation_id"]
        env = latency.service_env(tmp)
        port = latency._free_port()
        base = f"http://{HOST}:{port}"
        serve = ["serve", "--host", HOST, "--port", str(port), "--database-url", url]
        if args.workers:
            serve += ["--workers", str(args.workers)]
        if args.threads:
            serve += ["--threads", str(args.threads)]
        services.append(latency._start(serve, env, tmp / "server.log"))
        started = time.perf_counter()
        services.append(latency._start(["worker", "--database-url", url], env, tmp / "worker.log"))
        latency._wait_first_result(
            base, cid, services, started, args.first_timeout, tmp / "worker.log"
        )
        acknowledged: list[tuple[int, int, int]] = []
        for n in args.concurrency:
            print(f"[{database}] {n} participants ...", file=sys.stderr, flush=True)
            level = asyncio.run(_level(port, cid, n, args))
            acknowledged += level.pop("acknowledged")
            run["levels"][str(n)] = level
            print(f"[{database}] {n}: {_line(level)}", file=sys.stderr, flush=True)
        run["check"] = check(url, base, cid, run["vote_events"], acknowledged, args.catch_up)
        run["status"] = "ok"
    except KeyboardInterrupt:
        run["status"] = "interrupted"
        raise
    except Exception as error:  # report it and go on with the next database
        run["error"] = f"{type(error).__name__}: {error}"
        print(f"  failed: {run['error']}", file=sys.stderr, flush=True)
    finally:
        latency.tear_down(run, services, tmp, args, f"load-{database}", pg_name)
    return run


async def _level(port: int, cid: int, n: int, args) -> dict:
    rng = random.Random(args.seed * 1_000 + n)

    def voter(i, tally, stop):
        return participant(port, cid, tally, stop, random.Random(rng.random()), args.timeout)

    votes, seconds, cpu = await phase(voter, n, args.warmup, args.duration)

    def checker(i, tally, stop):
        return health_client(port, tally, stop, args.timeout)

    health, h_seconds, h_cpu = await phase(checker, n, args.warmup, args.duration)
    level = {
        "votes": summary(votes, seconds, cpu),
        "healthz": summary(health, h_seconds, h_cpu),
        "participants": votes.participants,
        "acknowledged": votes.acknowledged,
        "load": os.getloadavg(),
    }
    level["vote_to_health"] = (
        level["votes"]["per_s"] / level["healthz"]["per_s"] if level["healthz"]["per_s"] else None
    )
    return level


def check(url, base, cid, imported, acknowledged, catch_up_s) -> dict:
    """Count in the database that every acknowledged vote is stored exactly once, and wait for
    the published results to include them all."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            total = connection.scalar(
                text("SELECT count(*) FROM vote_events WHERE conversation_id = :c"), {"c": cid}
            )
            rows = connection.execute(
                text(
                    "SELECT pid, sid, vote FROM vote_events WHERE conversation_id = :c "
                    "ORDER BY id OFFSET :n"
                    if engine.dialect.name == "postgresql"
                    else "SELECT pid, sid, vote FROM vote_events WHERE conversation_id = :c "
                    "ORDER BY id LIMIT -1 OFFSET :n"
                ),
                {"c": cid, "n": imported},
            ).all()
    finally:
        engine.dispose()
    stored = Counter((int(p), int(s), int(v)) for p, s, v in rows)
    expected = Counter(acknowledged)
    pairs = Counter((p, s) for p, s, _ in rows)
    result = {
        "acknowledged": len(acknowledged),
        "stored_new": total - imported,
        "lost": sum((expected - stored).values()),
        "unacknowledged_stored": sum((stored - expected).values()),
        "counted_twice": sum(c - 1 for c in pairs.values() if c > 1),
    }
    started = time.perf_counter()
    seen = None
    while time.perf_counter() - started < catch_up_s:
        status, _, data = latency.request(base, "GET", f"/api/v1/conversations/{cid}/results")
        if status == 200:
            seen = json.loads(data)["participation"]["votes"]
            if seen >= total:
                result["caught_up_s"] = time.perf_counter() - started
                break
        time.sleep(0.25)
    result["results_votes"] = seen
    result["stored_total"] = total
    result["passed"] = (
        result["lost"] == 0
        and result["counted_twice"] == 0
        and result["stored_new"] == len(acknowledged)
        and "caught_up_s" in result
    )
    return result


# -- the report -----------------------------------------------------------------------------


def _line(level: dict) -> str:
    v, h = level["votes"], level["healthz"]
    return (
        f"{v['per_s']:.0f} votes/s, p50 {_f(v['p50_ms'])} p99 {_f(v['p99_ms'])} ms, "
        f"errors {sum(v['errors'].values())}; healthz {h['per_s']:.0f}/s"
    )


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(report: dict) -> str:
    lines = [
        (
            "| database | participants | votes/s | p50 ms | p95 ms | p99 ms | errors "
            "| /healthz per s | votes / healthz | generator CPU |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for run in report["runs"]:
        for n, level in run.get("levels", {}).items():
            v, h = level["votes"], level["healthz"]
            errors = ", ".join(f"{k}: {c}" for k, c in v["errors"].items()) or "0"
            ratio = level["vote_to_health"]
            lines.append(
                f"| {run['database']} | {n} | {v['per_s']:.0f} | {_f(v['p50_ms'])} "
                f"| {_f(v['p95_ms'])} | {_f(v['p99_ms'])} | {errors} | {h['per_s']:.0f} "
                f"| {'–' if ratio is None else f'{ratio:.2f}'} "
                f"| {v['generator_cpu_s'] / v['seconds']:.0%} |"
            )
    lines.append("")
    for run in report["runs"]:
        check_ = run.get("check")
        if check_ is None:
            lines.append(f"- {run['database']}: {run.get('error', run['status'])}")
            continue
        caught = check_.get("caught_up_s")
        lines.append(
            f"- {run['database']}: {check_['acknowledged']:,} votes acknowledged, "
            f"{check_['stored_new']:,} stored, {check_['lost']} lost, "
            f"{check_['counted_twice']} counted twice; results "
            + (
                f"caught up {caught:.1f} s after the load"
                if caught is not None
                else "did not catch up"
            )
            + f": **{'pass' if check_['passed'] else 'FAIL'}**"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    databases = latency._names(args.databases, DATABASES, "database")
    args.concurrency = [int(n) for n in args.concurrency.split(",")]
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": latency.machine_info(),
        "runs": [],
    }
    for database in databases:
        report["runs"].append(run_database(database, args))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    passed = all(run.get("check", {}).get("passed") for run in report["runs"])
    return 0 if passed else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql")
    add(
        "--concurrency",
        default=",".join(map(str, CONCURRENCY)),
        help="participants at once, comma-separated (default: 8,64,256)",
    )
    add("--duration", type=float, default=20.0, help="counted seconds per level (default: 20)")
    add("--warmup", type=float, default=3.0, help="seconds before counting (default: 3)")
    add("--timeout", type=float, default=30.0, help="seconds before a request counts as lost")
    add("--catch-up", type=float, default=120.0, help="seconds the results may take to catch up")
    add("--first-timeout", type=float, default=300.0, help="seconds to wait for the first result")
    add("--workers", type=int, help="web processes (default: the service's)")
    add("--threads", type=int, help="threads per web process (default: the service's)")
    add(
        "--postgres-url",
        default=os.environ.get(
            "POLIS_LIKE_BENCH_POSTGRES", "postgresql://postgres@localhost:5432/postgres"
        ),
        help="the PostgreSQL server to create the benchmark databases on",
    )
    add("--seed", type=int, default=0, help="seed of the simulated participants' votes")
    add("--logs", type=Path, help="keep the server's and the worker's logs in this folder")
    add("--out", type=Path, help="write the full report as JSON")
    return parser


if __name__ == "__main__":
    sys.exit(main())
