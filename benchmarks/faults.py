"""Faults under load: scripted scenarios, each with a pass/fail result.

    python benchmarks/faults.py                          # every scenario (2 to 5 minutes)
    python benchmarks/faults.py --scenarios worker-kill --databases sqlite
    python benchmarks/faults.py --out faults.json --logs logs/

Each scenario runs the service as deployed (``polis-like serve`` and ``polis-like worker`` as
processes, on a fresh database) with participants voting over real HTTP (``load.py``'s, at a
small steady pace; see ``faultkit.py``), does its harm, then counts the database: every
acknowledged vote stored exactly once, and each conversation's published result counting
exactly the votes stored.

Every PostgreSQL database is on a server of the scenario's own (``initdb`` in a temporary
folder, on a free port; run as the ``postgres`` account when root).

- ``worker-kill`` (SQLite and PostgreSQL): the worker is killed with SIGKILL while it computes
  (its log says "computing" and nothing has ended it; checked afterwards in the log and the
  job's tick, else tried again) while a second worker, started just before, waits beside it.
  That one must take the conversation over only once the dead worker's lease (``--lease``,
  5 s) has run out.
- ``postgres-restart``: the PostgreSQL server is stopped (``pg_ctl stop -m fast``) for
  ``--outage`` seconds and started again. The API must answer 503 with Retry-After meanwhile
  (never anything else, never a traceback in the logs), and recover without a restart of
  anything.
- ``two-of-each``: two web servers and two workers on one PostgreSQL database, three
  conversations, participants on both servers, two conversations at a time for 5 s each so
  that the idle one is let go of (``POLIS_LIKE_WORKER_IDLE_S`` 2 s) and taken again. No
  conversation may be computed by both workers at once (the spans between each worker's
  "computing" and its end in their logs), and each is kept current (the age of its oldest
  vote not in its results, sampled twice a second, stays under ``--max-lag``).
- ``disk-full``: the SQLite database on a small tmpfs, which is then filled. Votes must get
  503 "the database's disk is full" with Retry-After, reads go on, and votes are taken again
  once there is room, without a restart; ``PRAGMA integrity_check`` at the end. Mounting a
  tmpfs needs root (CAP_SYS_ADMIN): without it the scenario fails and says why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import latency  # noqa: E402  (the service set-up it shares: databases, processes, ports)
from faultkit import (  # noqa: E402
    LagSampler,
    Load,
    PrivatePostgres,
    catch_up,
    count_votes,
    job,
    last_event_id,
    overlaps,
    read_log,
    sqlite_integrity,
    tracebacks,
)

SCENARIOS = ("worker-kill", "postgres-restart", "two-of-each", "disk-full")
DATABASES = ("sqlite", "postgresql")
HOST = latency.HOST
FIXTURES = {
    "vtaiwan.uberx": ROOT / "polis_like" / "demo" / "vtaiwan.uberx",
    **{p.name: p for p in (ROOT / "tests" / "fixtures").iterdir() if (p / "votes.csv").exists()},
}


class Run:
    """One scenario on one database: its folder, services and checks; ``with`` tears it down
    and records an unexpected error as the scenario's failure."""

    def __init__(self, scenario: str, database: str, args: argparse.Namespace):
        self.args = args
        self.result: dict = {"scenario": scenario, "database": database, "checks": []}
        self.tmp = Path(tempfile.mkdtemp(prefix="polis-like-faults-"))
        self.services: dict[str, subprocess.Popen] = {}
        self.cleanups: list = []

    def __enter__(self) -> Run:
        self.started = time.monotonic()
        print(f"[{self.result['scenario']} / {self.result['database']}]", file=sys.stderr)
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        if error is not None:
            self.result["error"] = f"{type(error).__name__}: {error}"
            traceback.print_exception(error, file=sys.stderr)
        for process in reversed(self.services.values()):
            latency._stop(process)
        if self.args.logs:
            self.args.logs.mkdir(parents=True, exist_ok=True)
            label = f"{self.result['scenario']}-{self.result['database']}"
            for log in self.tmp.glob("*.log"):
                shutil.copy(log, self.args.logs / f"{label}-{log.name}")
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as problem:
                print(f"  clean-up failed: {problem}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.result["seconds"] = round(time.monotonic() - self.started, 1)
        checks = self.result["checks"]
        self.result["passed"] = "error" not in self.result and all(c["ok"] for c in checks)
        return kind is not None and issubclass(kind, Exception)

    def check(self, ok: bool, what: str) -> bool:
        self.result["checks"].append({"ok": bool(ok), "what": what})
        print(f"  {'pass' if ok else 'FAIL'}: {what}", file=sys.stderr, flush=True)
        return bool(ok)

    def note(self, what: str) -> None:
        self.result.setdefault("notes", []).append(what)
        print(f"  note: {what}", file=sys.stderr, flush=True)

    def database(self, database: str) -> str:
        """A fresh, empty database: a SQLite file here, or one on a PostgreSQL server of the
        scenario's own (other databases' long transactions on a shared server would hold
        the results back: transaction ids are the server's)."""
        if database == "sqlite":
            return f"sqlite:///{self.tmp / 'faults.db'}"
        self.postgres = PrivatePostgres(self.tmp)
        self.cleanups.append(self.postgres.close)
        self.postgres.start()
        return latency.fresh_database("postgresql", self.postgres.url(), self.tmp)[0]

    def env(self, **extra: str) -> dict:
        return {**latency.service_env(self.tmp), **extra}

    def serve(self, url: str, env: dict, label: str = "server") -> tuple[int, str]:
        port = latency._free_port()
        arguments = ["serve", "--host", HOST, "--port", str(port), "--database-url", url]
        arguments += ["--workers", "1", "--threads", "8"]
        self.services[label] = latency._start(arguments, env, self.log(label))
        return port, f"http://{HOST}:{port}"

    def worker(self, url: str, env: dict, label: str) -> subprocess.Popen:
        self.services[label] = latency._start(
            ["worker", "--database-url", url], env, self.log(label)
        )
        return self.services[label]

    def log(self, label: str) -> Path:
        return self.tmp / f"{label}.log"

    def alive(self, *labels: str) -> bool:
        return all(self.services[label].poll() is None for label in labels)


def prepare(url: str, names: list[str]) -> list[int]:
    """Migrate the fresh database and import the conversations; their ids."""
    from polis_like.storage.db import session_factory
    from polis_like.storage.migrate import ensure_current
    from polis_like.storage.transfer import import_export

    engine = ensure_current(url)
    try:
        return [import_export(session_factory(engine), FIXTURES[name]) for name in names]
    finally:
        engine.dispose()


def wait_results(run: Run, base: str, cids: list[int], timeout_s: float) -> None:
    """Until each conversation has a published result (the worker's first computation)."""
    deadline = time.monotonic() + timeout_s
    for cid in cids:
        while latency_status(base, f"/api/v1/conversations/{cid}/results") != 200:
            for label, process in run.services.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{label} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"conversation {cid} had no result after {timeout_s:.0f} s")
            time.sleep(0.3)


def latency_status(base: str, path: str) -> int | None:
    try:
        return latency.request(base, "GET", path)[0]
    except OSError:
        return None  # not listening yet


def count_and_catch_up(run: Run, url: str, base: str, cids, mark: int, votes) -> None:
    """The checks every scenario ends with."""
    counted = count_votes(url, mark, votes.acked())
    run.result["votes"] = counted
    run.check(
        counted["lost"] == 0 and counted["stored_twice"] == 0 and counted["acknowledged"] > 0,
        f"{counted['acknowledged']:,} votes acknowledged, {counted['lost']} lost, "
        f"{counted['stored_twice']} stored twice ({counted['unacknowledged_stored']} stored "
        "though their answer was an error or lost)",
    )
    caught = catch_up(base, url, cids, run.args.catch_up)
    run.result["catch_up"] = caught
    run.check(
        caught["seconds"] is not None,
        "each published result counts exactly the votes stored ("
        + ", ".join(f"{caught['results'].get(c)} of {caught['stored'][c]:,}" for c in cids)
        + (
            f", {caught['seconds']:.1f} s after the load)" if caught["seconds"] is not None else ")"
        ),
    )


# -- 1. the worker killed mid-computation ----------------------------------------------------------


def worker_kill(database: str, args: argparse.Namespace) -> dict:
    with Run("worker-kill", database, args) as run:
        url = run.database(database)
        (cid,) = prepare(url, ["vtaiwan.uberx"])
        env = run.env(POLIS_LIKE_WORKER_LEASE_S=str(args.lease))
        port, base = run.serve(url, env)
        run.worker(url, env, "worker-1")
        wait_results(run, base, [cid], args.first_timeout)
        mark = last_event_id(url)
        load = Load([port], [cid], n=4, pause_s=0.05).start()
        try:
            # A second worker waits beside the first (the one to take over), and, should the
            # kill come just after a publish, itself becomes the one to kill once it has.
            active, killed, taken = "worker-1", None, None
            for attempt in range(2, args.attempts + 2):
                label = f"worker-{attempt}"
                run.worker(url, env, label)
                ready = wait_started(run, label)
                killed = kill_mid_computation(run, url, cid, active)
                if killed is not None:
                    break
                run.note("the kill came just after a publish; once more, the next worker")
                active = label
            if not run.check(killed is not None, f"{active} was killed while computing"):
                return run.result
            taken = wait_taken_over(run, url, cid, killed, label, args.first_timeout)
            time.sleep(5)  # more votes, now through the new worker
        finally:
            votes = load.stop()
        run.result["kill"] = {**killed, **taken, "ready": ready}
        remaining = killed["lease_until"] - killed["at"]
        run.check(
            ready < killed["lease_until"] <= taken["first_start"] + 0.001,
            f"{label}, waiting since {killed['at'] - ready:.1f} s before the kill, began "
            f"{taken['first_start'] - killed['at']:.1f} s after it, once the lease had run out "
            f"({remaining:.1f} s left of it at the kill), and published "
            f"{taken['published'] - killed['at']:.1f} s after it",
        )
        count_and_catch_up(run, url, base, [cid], mark, votes)
        bad = tracebacks(run.log("server"), run.log(label))
        run.check(not bad and run.alive("server", label), f"no traceback in the logs {bad or ''}")
        if database == "sqlite":
            integrity = sqlite_integrity(url)
            run.check(integrity == "ok", f"PRAGMA integrity_check: {integrity}")
    return run.result


def kill_mid_computation(run: Run, url: str, cid: int, label: str) -> dict | None:
    """SIGKILL the worker once its log shows a computation running; the kill's details, or
    None when it came too late (the result was published meanwhile)."""
    log, process = run.log(label), run.services[label]
    before = job(url, cid)["tick"]  # this worker's first computation publishes the next one
    deadline = time.monotonic() + 120
    while True:
        _, spans, _ = read_log(log)
        if spans and spans[-1].end is None and spans[-1].cid == cid:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{label} did not compute (exit status {process.poll()})")
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    at = time.time()
    process.wait(10)
    name, spans, _ = read_log(log)
    published = [s.tick for s in spans if s.tick is not None]
    row = job(url, cid)
    if spans[-1].end is not None or row["tick"] != (published[-1] if published else before):
        return None
    return {"worker": name, "at": at, "tick": row["tick"], "lease_until": row["lease_until"]}


def wait_started(run: Run, label: str) -> float:
    """Until the worker's log says it started (it then polls for work); when."""
    deadline = time.monotonic() + 120
    while True:
        name, _, last = read_log(run.log(label))
        if name is not None and last is not None:
            return last
        if run.services[label].poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{label} did not start")
        time.sleep(0.1)


def wait_taken_over(run: Run, url: str, cid: int, killed: dict, label: str, timeout_s: float):
    """Until the new worker publishes; when it began and published."""
    deadline = time.monotonic() + timeout_s
    while True:
        name, spans, _ = read_log(run.log(label))
        row = job(url, cid)
        done = [s for s in spans if s.tick is not None]  # the log line follows the commit
        if name and row["owner"] == name and row["tick"] > killed["tick"] and done:
            return {"new_worker": name, "first_start": spans[0].start, "published": done[0].end}
        if run.services[label].poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{label} did not take the conversation over")
        time.sleep(0.1)


# -- 2. PostgreSQL stopped and started -------------------------------------------------------------


def postgres_restart(args: argparse.Namespace) -> dict:
    with Run("postgres-restart", "postgresql", args) as run:
        url = run.database("postgresql")
        server = run.postgres
        (cid,) = prepare(url, ["brexit-consensus"])
        env = run.env()
        port, base = run.serve(url, env)
        run.worker(url, env, "worker")
        wait_results(run, base, [cid], args.first_timeout)
        mark = last_event_id(url)
        load = Load([port], [cid], n=4, pause_s=0.05).start()
        try:
            time.sleep(4)
            down = time.time()
            server.stop("fast")
            time.sleep(args.outage)
            server.start()
            up = time.time()
            deadline = time.monotonic() + 60
            while not any(v[4] > up for v in load.votes.acknowledged):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(8)
        finally:
            votes = load.stop()
        answers = [a for a in votes.answers if down <= a.at]
        refused = [a for a in answers if a.status == 503]
        after = [v[4] for v in votes.acknowledged if v[4] > up]
        run.result["outage"] = {"seconds": up - down, "answers_503": len(refused)}
        run.check(refused, f"{len(refused)} requests answered 503 in the {up - down:.1f} s outage")
        others = [a for a in votes.answers if a.status != 503 or not a.retry_after]
        kinds = sorted({a.kind + ("" if a.retry_after else " without Retry-After") for a in others})
        run.check(not others, f"every other answer was a 503 with Retry-After {kinds or ''}")
        run.check(
            after and run.alive("server", "worker"),
            f"votes taken again {after[0] - up:.1f} s after the restart, nothing restarted"
            if after
            else "no vote taken after the restart",
        )
        bad = tracebacks(run.log("server"), run.log("worker"))
        run.check(not bad, f"no traceback in the logs {bad or ''}")
        count_and_catch_up(run, url, base, [cid], mark, votes)
    return run.result


# -- 3. two web servers and two workers on one PostgreSQL ------------------------------------------


def two_of_each(args: argparse.Namespace) -> dict:
    with Run("two-of-each", "postgresql", args) as run:
        url = run.database("postgresql")
        names = ["brexit-consensus", "15-per-hour-seattle", "canadian-electoral-reform"]
        cids = prepare(url, names)
        # A worker lets go of a conversation idle for 2 s; whichever sees it next takes it.
        env = run.env(POLIS_LIKE_WORKER_LEASE_S="10", POLIS_LIKE_WORKER_IDLE_S="2")
        port_1, base = run.serve(url, env, "server-1")
        port_2, _ = run.serve(url, env, "server-2")
        run.worker(url, env, "worker-1")
        run.worker(url, env, "worker-2")
        wait_results(run, base, cids, args.first_timeout)
        mark = last_event_id(url)
        load = Load([port_1, port_2], cids, n=6, pause_s=0.05).start()
        sampler = LagSampler(url, cids).start()
        try:
            # Two conversations at a time, the third left idle long enough to be let go of
            # and taken again, by either worker: conversations change hands under load.
            for phase in range(max(1, round(args.duration / 5))):
                load.cids[:] = [cids[phase % 3], cids[(phase + 1) % 3]]
                time.sleep(args.duration / max(1, round(args.duration / 5)))
        finally:
            lags = sampler.stop()
            votes = load.stop()
        logs = {label: run.log(label) for label in ("worker-1", "worker-2")}
        found = overlaps(logs)
        spans = {label: read_log(path)[1] for label, path in logs.items()}
        shares = {
            label: {cid: sum(1 for s in found_spans if s.cid == cid) for cid in cids}
            for label, found_spans in spans.items()
        }
        run.result["computations"] = shares
        run.check(
            not found,
            "no conversation computed by both workers at once ("
            + "; ".join(f"{label}: {shares[label]}" for label in shares)
            + " computations by conversation)"
            + (f": {found[:3]}" if found else ""),
        )
        run.result["worst_lag_s"] = lags
        run.check(
            max(lags.values()) <= args.max_lag,
            "each conversation kept current: its oldest vote not in its results at most "
            + ", ".join(f"{lags[c]:.1f}" for c in cids)
            + f" s old (allowed {args.max_lag:.0f})",
        )
        if sampler.long_transactions:
            run.note(f"transactions open over 1 s: {sampler.long_transactions[:5]}")
        bad = tracebacks(*(run.log(label) for label in run.services))
        run.check(not bad, f"no traceback in the logs {bad or ''}")
        count_and_catch_up(run, url, base, cids, mark, votes)
    return run.result


# -- 4. a full disk (SQLite) -----------------------------------------------------------------------


def disk_full(args: argparse.Namespace) -> dict:
    with Run("disk-full", "sqlite (tmpfs)", args) as run:
        disk = run.tmp / "disk"
        disk.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            check=False,
        )
        if not run.check(
            mounted.returncode == 0,
            "a tmpfs to fill (needs root with CAP_SYS_ADMIN): "
            + (mounted.stderr.strip() or "mounted"),
        ):
            return run.result
        run.cleanups.append(lambda: subprocess.run(["umount", "-l", str(disk)], check=False))
        url = f"sqlite:///{disk / 'faults.db'}"
        (cid,) = prepare(url, ["brexit-consensus"])
        env = run.env()
        port, base = run.serve(url, env)
        run.worker(url, env, "worker")
        wait_results(run, base, [cid], args.first_timeout)
        mark = last_event_id(url)
        load = Load([port], [cid], n=4, pause_s=0.05).start()
        try:
            time.sleep(3)
            full = time.time()
            fill(disk / "filler")
            deadline = time.monotonic() + 60
            while not [a for a in load.votes.answers if a.at > full and a.status == 503]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            refused_at = time.time()
            time.sleep(3)
            reads = {
                path: latency_status(base, path)
                for path in (f"/api/v1/conversations/{cid}/results", f"/c/{cid}", "/healthz")
            }
            (disk / "filler").unlink()
            freed = time.time()
            deadline = time.monotonic() + 60
            while not any(v[4] > freed for v in load.votes.acknowledged):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(5)
        finally:
            votes = load.stop()
        refused = [a for a in votes.answers if a.at > full and a.status == 503]
        run.check(
            refused and refused[0].message == FULL,
            f"votes refused {refused[0].at - full:.1f} s after the disk filled: "
            f"{refused[0].status} {refused[0].message!r}, Retry-After {refused[0].retry_after}"
            if refused
            else "no vote refused while the disk was full",
        )
        others = [a for a in votes.answers if a.status != 503 or not a.retry_after]
        run.check(not others, f"no other answer than 503 with Retry-After {others[:3] or ''}")
        run.check(
            set(reads.values()) == {200},
            f"reads go on while it is full {reads} ({refused_at - full:.1f} s in)",
        )
        after = [v[4] for v in votes.acknowledged if v[4] > freed]
        run.check(
            after and run.alive("server", "worker"),
            f"votes taken again {after[0] - freed:.1f} s after room was made, nothing restarted"
            if after
            else "no vote taken after room was made",
        )
        bad = tracebacks(run.log("server"), run.log("worker"))
        run.check(not bad, f"no traceback in the logs {bad or ''}")
        integrity = sqlite_integrity(url)
        run.check(integrity == "ok", f"PRAGMA integrity_check: {integrity}")
        count_and_catch_up(run, url, base, [cid], mark, votes)
    return run.result


FULL = "the database's disk is full; nothing can be saved until it is fixed, reading still works"


def fill(path: Path) -> None:
    """Write to ``path`` until the file system is full."""
    block = b"\0" * (1 << 20)
    with open(path, "wb") as file:
        try:
            while True:
                file.write(block)
                file.flush()
        except OSError:
            pass
        try:  # the last bytes the page cache holds
            os.fsync(file.fileno())
        except OSError:
            pass


# -- the report ------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    lines = ["| scenario | database | result | time |", "| --- | --- | --- | ---: |"]
    for result in report["results"]:
        verdict = "**pass**" if result.get("passed") else "**FAIL**"
        lines.append(
            f"| {result['scenario']} | {result['database']} | {verdict} | "
            f"{result.get('seconds', 0):.0f} s |"
        )
    for result in report["results"]:
        lines += ["", f"{result['scenario']} / {result['database']}:"]
        lines += [f"- {'pass' if c['ok'] else 'FAIL'}: {c['what']}" for c in result["checks"]]
        lines += [f"- note: {n}" for n in result.get("notes", [])]
        if "error" in result:
            lines.append(f"- FAIL: {result['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = latency._names(args.scenarios, SCENARIOS, "scenario")
    databases = latency._names(args.databases, DATABASES, "database")
    latency._stop_on_sigterm()
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": latency.machine_info(),
        "results": [],
    }
    for scenario in scenarios:
        if scenario == "worker-kill":
            for database in databases:
                report["results"].append(worker_kill(database, args))
        elif scenario == "postgres-restart":
            report["results"].append(postgres_restart(args))
        elif scenario == "two-of-each":
            report["results"].append(two_of_each(args))
        else:
            report["results"].append(disk_full(args))
        if args.out:
            args.out.write_text(json.dumps(report, indent=1, default=str))
    print(markdown(report))
    return 0 if all(r.get("passed") for r in report["results"]) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    add("--databases", default=",".join(DATABASES), help="of worker-kill: sqlite, postgresql")
    add("--lease", type=float, default=5.0, help="the workers' lease in worker-kill (s)")
    add("--attempts", type=int, default=5, help="kills in worker-kill before giving up")
    add("--outage", type=float, default=8.0, help="seconds PostgreSQL stays stopped")
    add("--duration", type=float, default=30.0, help="seconds of votes in two-of-each")
    add("--max-lag", type=float, default=10.0, help="most s a vote waits for its result")
    add("--disk-mb", type=int, default=48, help="size of disk-full's tmpfs (MB)")
    add("--catch-up", type=float, default=120.0, help="seconds the results may take to catch up")
    add("--first-timeout", type=float, default=300.0, help="seconds to wait for a first result")
    add("--logs", type=Path, help="keep the services' logs in this folder")
    add("--out", type=Path, help="write the full report as JSON")
    return parser


if __name__ == "__main__":
    sys.exit(main())
