"""Streams benchmark: votes while many event streams and slow clients hold connections.

    python benchmarks/streams.py                                  # PostgreSQL, 1000 + 100, 64
    python benchmarks/streams.py --streams 2000 --slow 200 --rounds 3 --out /tmp/streams.json

Like ``load.py`` (whose participants and client it uses), it makes a fresh database, imports
the demo conversation (vtaiwan.uberx) and runs ``polis-like serve`` (the service's default
processes and threads) and ``polis-like worker`` on a free port. Then, for each round:

1. **without**: ``--participants`` simulated participants vote for ``--warmup`` + ``--duration``
   seconds (the votes of the last ``--duration`` are counted), as in ``load.py``;
2. **with**: ``--streams`` clients open the conversation's event stream
   (``GET /api/v1/conversations/{id}/events``) and keep reading it, ``--slow`` clients open a
   connection and send a request's headers one byte every ``--slow-interval`` seconds (and
   open a new one when the server closes theirs), and once the streams are open the same
   participants vote again.

During both phases a prober asks ``GET /healthz`` every 0.25 s on a connection of its own.
The report gives, per phase: votes/s, vote p50 / p99, errors; the streams that opened, were
refused (503) or dropped, the ``results`` events they received; the slow connections opened
and closed by the server; /healthz's answers, latencies and failures.

The participants run in one asyncio process (its CPU share is reported), the streams, slow
clients and prober in another (so that reading a thousand streams does not slow the voters'
client), on the same machine as the server, the worker and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import latency  # noqa: E402  (databases, processes, ports)
import load  # noqa: E402  (the participants and their HTTP client)

HOST = latency.HOST


@dataclass
class Watch:
    """What the streams, slow clients and the /healthz prober saw in one phase."""

    open_streams: int = 0
    max_open: int = 0
    refused: int = 0
    dropped: int = 0
    failed: int = 0
    events: int = 0
    slow_opened: int = 0
    slow_closed_by_server: int = 0
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0


async def stream_client(port: int, cid: int, watch: Watch, stop: asyncio.Event) -> None:
    """Hold one event stream open, reading it; reopen after a 503 or a drop (with back-off)."""
    pause = 1.0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            watch.failed += 1
            await asyncio.sleep(pause)
            continue
        opened = False
        try:
            writer.write(
                f"GET /api/v1/conversations/{cid}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status = int((await reader.readuntil(b"\r\n")).split()[1])
            if status != 200:
                watch.refused += 1
            else:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                opened = True
                watch.open_streams += 1
                watch.max_open = max(watch.max_open, watch.open_streams)
                pause = 1.0
                while not stop.is_set():
                    line = await reader.readline()
                    if not line:
                        watch.dropped += 1
                        break
                    if b"event: results" in line:
                        watch.events += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            if not stop.is_set():
                watch.dropped += opened
                watch.failed += not opened
        finally:
            if opened:
                watch.open_streams -= 1
            writer.close()
        if not stop.is_set():
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, 30.0)


async def slow_client(port: int, interval: float, watch: Watch, stop: asyncio.Event) -> None:
    """Send request headers one byte at a time, never finishing; a new connection each time
    the server closes one."""
    head = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        watch.slow_opened += 1
        try:
            i = 0
            while not stop.is_set():
                byte = head[i : i + 1] if i < len(head) else b"x-slow: a\r\n"[i % 11 : i % 11 + 1]
                writer.write(byte)
                await writer.drain()
                i += 1
                try:
                    if await asyncio.wait_for(reader.read(1), interval) == b"":
                        watch.slow_closed_by_server += 1
                        break
                except TimeoutError:
                    pass
        except OSError:
            watch.slow_closed_by_server += 1
        finally:
            writer.close()


async def prober(port: int, watch: Watch, stop: asyncio.Event) -> None:
    """``GET /healthz`` every 0.25 s, on a connection of its own (5 s timeout)."""
    connection = load.Connection(port, 5.0)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status, _, _, _ = await connection.request("GET", "/healthz")
                if status == 200:
                    watch.health_ms.append((time.perf_counter() - started) * 1000)
                else:
                    watch.health_failures += 1
            except load.HTTPError:
                watch.health_failures += 1
            await asyncio.sleep(0.25)
    finally:
        await connection.close()


async def hold(port: int, cid: int, args, with_streams: bool, conn) -> None:
    """The streams, the slow clients and the prober, in a process of their own (so that reading
    a thousand streams does not slow the voters' client): open them, say how many opened, note
    when the votes start, and report when told to stop."""
    watch, stop = Watch(), asyncio.Event()
    tasks = [asyncio.create_task(prober(port, watch, stop))]
    if with_streams:
        tasks += [
            asyncio.create_task(stream_client(port, cid, watch, stop)) for _ in range(args.streams)
        ]
        tasks += [
            asyncio.create_task(slow_client(port, args.slow_interval, watch, stop))
            for _ in range(args.slow)
        ]
        deadline = time.monotonic() + args.open_timeout
        while watch.open_streams < args.streams and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    conn.send(watch.open_streams)
    await loop.run_in_executor(None, conn.recv)  # the votes start
    events_before, cpu_before = watch.events, _cpu()
    watch.health_ms.clear()  # /healthz while the votes run, not while the streams opened
    watch.health_failures = 0
    await loop.run_in_executor(None, conn.recv)  # the votes ended
    open_at_end = watch.open_streams
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    health = sorted(watch.health_ms)
    conn.send(
        {
            "streams_open_at_end": open_at_end,
            "streams_max_open": watch.max_open,
            "streams_refused": watch.refused,
            "streams_dropped": watch.dropped,
            "streams_failed": watch.failed,
            "results_events_during_votes": watch.events - events_before,
            "slow_opened": watch.slow_opened,
            "slow_closed_by_server": watch.slow_closed_by_server,
            "holder_cpu_s": _cpu() - cpu_before,
            "healthz": {
                "answered": len(health),
                "failures": watch.health_failures,
                "p50_ms": statistics.median(health) if health else None,
                "p99_ms": health[min(len(health) - 1, int(0.99 * len(health)))] if health else None,
                "max_ms": health[-1] if health else None,
            },
        }
    )


def _hold(port: int, cid: int, args, with_streams: bool, conn) -> None:
    asyncio.run(hold(port, cid, args, with_streams, conn))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and their children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return sum(cpu for pid, (ppid, cpu) in stats.items() if pid in pids or ppid in pids)


def run_phase(port: int, cid: int, args, with_streams: bool, seed: int, services) -> dict:
    """One phase: the holders' process opens its clients, then the participants vote."""
    ours, theirs = multiprocessing.Pipe()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold, args=(port, cid, args, with_streams, theirs), daemon=True
    )
    holder.start()
    try:
        opened = ours.recv()
        rng = random.Random(seed)

        def voter(i, tally, stop_votes):
            return load.participant(
                port, cid, tally, stop_votes, random.Random(rng.random()), args.timeout
            )

        ours.send("votes")
        pids = [process.pid for process in services]
        server_cpu = process_cpu(pids[:1]), process_cpu(pids[1:])
        votes, seconds, cpu = asyncio.run(
            load.phase(voter, args.participants, args.warmup, args.duration)
        )
        server_cpu = process_cpu(pids[:1]) - server_cpu[0], process_cpu(pids[1:]) - server_cpu[1]
        ours.send("stop")
        held = ours.recv()
    finally:
        holder.join(30)
        if holder.is_alive():
            holder.kill()
    return {
        "streams": args.streams if with_streams else 0,
        "slow": args.slow if with_streams else 0,
        "votes": load.summary(votes, seconds, cpu),
        "acknowledged": votes.acknowledged,
        "streams_open_before_votes": opened,
        # over the warm-up and the counted seconds
        "web_cpu_s": server_cpu[0],
        "worker_cpu_s": server_cpu[1],
        **held,
        "load": os.getloadavg(),
    }


def run(args: argparse.Namespace) -> dict:
    report: dict = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": latency.machine_info(),
        "database": args.database,
        "started": datetime.now().isoformat(timespec="seconds"),
        "phases": [],
        "status": "error",
    }
    tmp = Path(tempfile.mkdtemp(prefix="polis-like-streams-"))
    services: list = []
    pg_name = None
    try:
        url, pg_name = latency.fresh_database(args.database, args.postgres_url, tmp)
        report.update(latency.prepare("vtaiwan", url, 0))
        cid = report["conversation_id"]
        port = latency._free_port()
        serve = ["serve", "--host", HOST, "--port", str(port), "--database-url", url]
        env = latency.service_env(tmp)
        services.append(latency._start(serve, env, tmp / "server.log"))
        started = time.perf_counter()
        services.append(latency._start(["worker", "--database-url", url], env, tmp / "worker.log"))
        base = f"http://{HOST}:{port}"
        latency._wait_first_result(
            base, cid, services, started, args.first_timeout, tmp / "worker.log"
        )
        acknowledged: list = []
        for round_ in range(args.rounds):
            for with_streams in (False, True):
                name = "with" if with_streams else "without"
                print(f"round {round_ + 1}: {name} streams ...", file=sys.stderr, flush=True)
                phase = run_phase(port, cid, args, with_streams, round_, services)
                acknowledged += phase.pop("acknowledged")
                phase.update(round=round_ + 1, name=name)
                report["phases"].append(phase)
                print(f"  {line(phase)}", file=sys.stderr, flush=True)
        report["check"] = load.check(url, base, cid, report["vote_events"], acknowledged, 120)
        report["status"] = "ok"
    finally:
        latency.tear_down(report, services, tmp, args, f"streams-{args.database}", pg_name)
    return report


def line(phase: dict) -> str:
    v, h = phase["votes"], phase["healthz"]
    return (
        f"{v['per_s']:.0f} votes/s, p50 {load._f(v['p50_ms'])} p99 {load._f(v['p99_ms'])} ms, "
        f"errors {sum(v['errors'].values())}; streams open {phase['streams_open_at_end']}"
        f"/{phase['streams']} (refused {phase['streams_refused']}, dropped "
        f"{phase['streams_dropped']}), results events {phase['results_events_during_votes']}; "
        f"slow {phase['slow_opened']} opened, {phase['slow_closed_by_server']} closed by the "
        f"server; /healthz {h['answered']} answered, {h['failures']} failed, max "
        f"{load._f(h['max_ms'])} ms; CPU s: web {phase['web_cpu_s']:.1f}, worker "
        f"{phase['worker_cpu_s']:.1f}, holders {phase['holder_cpu_s']:.1f}"
    )


def markdown(report: dict) -> str:
    lines = [
        (
            "| round | streams + slow | votes/s | vote p50 ms | vote p99 ms | vote errors "
            "| streams open (refused, dropped) | results events | slow closed by server "
            "| /healthz answered (failed) | /healthz max ms | generator CPU |"
        ),
        "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for p in report["phases"]:
        v, h = p["votes"], p["healthz"]
        lines.append(
            f"| {p['round']} | {p['streams']} + {p['slow']} | {v['per_s']:.0f} "
            f"| {load._f(v['p50_ms'])} | {load._f(v['p99_ms'])} | {sum(v['errors'].values())} "
            f"| {p['streams_open_at_end']} ({p['streams_refused']}, {p['streams_dropped']}) "
            f"| {p['results_events_during_votes']} | {p['slow_closed_by_server']} "
            f"| {h['answered']} ({h['failures']}) | {load._f(h['max_ms'])} "
            f"| {v['generator_cpu_s'] / v['seconds']:.0%} |"
        )
    for name in ("without", "with"):
        phases = [p for p in report["phases"] if p["name"] == name]
        if len(phases) > 1:
            med = {
                k: statistics.median(p["votes"][k] for p in phases)
                for k in ("per_s", "p50_ms", "p99_ms")
            }
            lines.append(
                f"\nmedian {name} streams ({len(phases)} rounds): {med['per_s']:.0f} votes/s, "
                f"p50 {med['p50_ms']:.1f} ms, p99 {med['p99_ms']:.1f} ms"
            )
    check = report.get("check")
    if check:
        lines.append(
            f"\n{check['acknowledged']:,} votes acknowledged, {check['stored_new']:,} stored, "
            f"{check['lost']} lost, {check['counted_twice']} counted twice: "
            f"**{'pass' if check['passed'] else 'FAIL'}**"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per stream
    report = run(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0 if report.get("check", {}).get("passed") else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--database", default="postgresql", choices=("postgresql", "sqlite"))
    add("--streams", type=int, default=1000, help="open event streams (default: 1000)")
    add("--slow", type=int, default=100, help="slow-header connections (default: 100)")
    add("--slow-interval", type=float, default=1.0, help="seconds between a slow client's bytes")
    add("--participants", type=int, default=64, help="voters at once (default: 64)")
    add("--rounds", type=int, default=1, help="rounds of (without, with) streams (default: 1)")
    add("--duration", type=float, default=20.0, help="counted seconds per phase (default: 20)")
    add("--warmup", type=float, default=3.0, help="seconds before counting (default: 3)")
    add("--timeout", type=float, default=30.0, help="seconds before a request counts as lost")
    add("--open-timeout", type=float, default=60.0, help="seconds to wait for the streams")
    add("--first-timeout", type=float, default=300.0, help="seconds to wait for the first result")
    add(
        "--postgres-url",
        default=os.environ.get(
            "POLIS_LIKE_BENCH_POSTGRES", "postgresql://postgres@localhost:5432/postgres"
        ),
        help="the PostgreSQL server to create the benchmark database on",
    )
    add("--logs", type=Path, help="keep the server's and the worker's logs in this folder")
    add("--out", type=Path, help="write the full report as JSON")
    return parser


if __name__ == "__main__":
    sys.exit(main())
