"""Import benchmark: ``polis-like import`` of a large synthetic Pol.is export, as a whole process.

    python benchmarks/ingest_import.py                          # 100k x 1,000 (3M votes), both
    python benchmarks/ingest_import.py --databases sqlite --runs 1
    python benchmarks/ingest_import.py --participants 1000000 --runs 1   # 30M votes

The export (``benchmarks/synthetic.py``'s conversation, 30 votes per participant, written by the
project's own writer, ``polis_like.io.write_export``) is made once and kept in ``--cache-dir``.
For each database and run the benchmark makes a fresh, migrated database (a SQLite file in a
temporary folder, or ``CREATE DATABASE polis_like_bench_<random>`` on the server of
``--postgres-url``, dropped at the end) and times:

* **cli**: ``polis-like import EXPORT --database-url URL`` as a child process: wall time and the
  child's peak RSS (reading the CSV files and storing);
* **store**: ``import_conversation`` alone, in a child that has read the export first: the
  store's time and how much it adds to the child's peak RSS over the conversation read.

Medians of ``--runs`` runs. Then, on SQLite, **votes during an import**: a database holding a
small conversation (``tests/fixtures/london.youth.policing``) takes votes on it from a thread
of this process, one every 50 ms through the storage functions (``record_vote``, the web's own
call), while ``polis-like import`` of the big export runs as a child; each vote's latency (its
call, which waits for the file's write lock) is reported (median, 99th percentile, max).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import synthetic

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "london.youth.policing"
MB = 1024 * 1024


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.store_child:
        _store_child(*args.store_child)
        return
    export = prepare(args.participants, args.statements, args.seed, args.cache_dir.resolve())
    print(f"export: {export}", file=sys.stderr, flush=True)
    report: dict = {"machine": machine_info(), "export": str(export), "runs": args.runs}
    for database in args.databases.split(","):
        for mode in ("cli", "store"):
            runs = []
            for i in range(args.runs):
                run = one_run(database, mode, export, args.postgres_url)
                print(f"{database} {mode} run {i + 1}: {json.dumps(run)}", file=sys.stderr)
                runs.append(run)
            report[f"{database}/{mode}"] = {"runs": runs, "median": _medians(runs)}
    if "sqlite" in args.databases.split(",") and not args.no_votes:
        report["sqlite/votes-during-import"] = votes_during_import(export, args.spacing)
    print(table(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--participants", type=int, default=100_000)
    add("--statements", type=int, default=1_000)
    add("--seed", type=int, default=0)
    add("--runs", type=int, default=3)
    add("--databases", default="sqlite,postgresql")
    add("--postgres-url", default="postgresql://postgres@localhost:5432/postgres")
    add("--spacing", type=float, default=0.05, help="seconds between the probe's votes")
    add("--no-votes", action="store_true", help="skip the votes-during-import probe")
    add(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polis-like-bench",
        help="where the synthetic export is kept between runs",
    )
    add("--out", type=Path, help="write the raw results as JSON")
    add("--store-child", nargs=2, metavar=("EXPORT", "URL"), help=argparse.SUPPRESS)
    return parser


def prepare(n_participants: int, n_statements: int, seed: int, cache_dir: Path) -> Path:
    """The synthetic export's folder, written once (our own writer, no groups)."""
    from polis_like.conversation import Conversation, Statement
    from polis_like.io import write_export

    folder = cache_dir / (
        f"export-{n_participants}x{n_statements}-v30-s{seed}-g{synthetic.GENERATOR_VERSION}"
    )
    if folder.exists():
        return folder
    events, _truth = synthetic.generate(n_participants, n_statements, 30, seed=seed)
    statements = [
        Statement(id=str(j), text=f"Synthetic statement {j}.", created_ms=synthetic.START_MS)
        for j in range(n_statements)
    ]
    ids = [str(i) for i in range(n_participants)]
    conversation = Conversation(
        summary={"topic": f"Synthetic {n_participants:,} x {n_statements:,}"},
        statements=statements,
        participant_ids=ids,
        votes=events,
    )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write_export(conversation, partial, groups=dict.fromkeys(ids))
    partial.replace(folder)
    return folder


def one_run(database: str, mode: str, export: Path, postgres_url: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url, pg_name = fresh_database(database, postgres_url, Path(tmp))
        try:
            migrate(url)
            if mode == "cli":
                argv = [_polis_like(), "import", str(export), "--database-url", url]
            else:
                argv = [sys.executable, __file__, "--store-child", str(export), url]
            record = run_child(argv)
            record["rows"] = count_rows(url)
        finally:
            if pg_name:
                _pg_admin(postgres_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    return record


def _polis_like() -> str:
    return str(Path(sys.executable).parent / "polis-like")


def run_child(argv: list[str]) -> dict:
    """Run ``argv``; its wall time, peak RSS and (store child) the JSON it printed."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {out[-500:]}")
    record = {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss * 1024 / MB}
    if out.startswith("{"):
        record.update(json.loads(out))
    return record


def _store_child(export: str, url: str) -> None:
    """In a child: read the export, then time ``import_conversation`` alone."""
    from polis_like.io import read_export
    from polis_like.storage.db import make_engine, session_factory
    from polis_like.storage.transfer import import_conversation

    started = time.perf_counter()
    conversation = read_export(export)
    read_s = time.perf_counter() - started
    after_read = _status_mb("VmRSS")
    peak_read = _status_mb("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    engine = make_engine(url)
    started = time.perf_counter()
    import_conversation(session_factory(engine), conversation)
    store_s = time.perf_counter() - started
    engine.dispose()
    peak_store = _status_mb("VmHWM")
    print(
        json.dumps(
            {
                "read_s": read_s,
                "store_s": store_s,
                "rss_after_read_mb": after_read,
                "peak_rss_reading_mb": peak_read,
                "peak_rss_storing_mb": peak_store,
                "store_added_mb": peak_store - after_read,
                "votes": len(conversation.votes),
            }
        )
    )


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return -1.0


def votes_during_import(export: Path, spacing: float) -> dict:
    """Votes on another conversation of the same SQLite file while ``polis-like import`` runs."""
    from sqlalchemy import select

    from polis_like.storage.db import make_engine, session_factory
    from polis_like.storage.models import LatestVoteRow
    from polis_like.storage.transfer import import_export
    from polis_like.storage.votes import record_vote

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        cid = import_export(sessions, FIXTURE)
        with sessions() as session:
            pairs = session.execute(
                select(LatestVoteRow.pid, LatestVoteRow.sid)
                .where(LatestVoteRow.conversation_id == cid)
                .limit(500)
            ).all()
        latencies: list[float] = []
        failures: list[str] = []
        stop = threading.Event()

        def vote() -> None:
            i = 0
            while not stop.is_set():
                pid, sid = pairs[i % len(pairs)]
                began = time.perf_counter()
                try:
                    with sessions() as session:
                        record_vote(session, cid, pid, sid, (i % 3) - 1)
                    latencies.append(time.perf_counter() - began)
                except Exception as error:  # the point is to see them, not to stop
                    failures.append(f"{type(error).__name__}: {str(error)[:100]}")
                i += 1
                stop.wait(max(0.0, spacing - (time.perf_counter() - began)))

        child = subprocess.Popen(
            [_polis_like(), "import", str(export), "--database-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        voter = threading.Thread(target=vote)
        started = time.monotonic()
        voter.start()
        child.wait()
        wall = time.monotonic() - started
        stop.set()
        voter.join()
        engine.dispose()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "import_wall_s": wall,
        "votes": len(ms),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "median_ms": statistics.median(ms) if ms else None,
        "p99_ms": ms[int(0.99 * (len(ms) - 1))] if ms else None,
        "max_ms": ms[-1] if ms else None,
    }


def migrate(url: str) -> None:
    from polis_like.storage.migrate import ensure_current

    ensure_current(url).dispose()


def count_rows(url: str) -> dict:
    from sqlalchemy import func, select

    from polis_like.storage.db import make_engine
    from polis_like.storage.models import LatestVoteRow, ParticipantRow, VoteEventRow

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                model.__tablename__: connection.scalar(select(func.count()).select_from(model))
                for model in (ParticipantRow, VoteEventRow, LatestVoteRow)
            }
    finally:
        engine.dispose()


def fresh_database(database: str, postgres_url: str, tmp: Path) -> tuple[str, str | None]:
    """A SQLite file in ``tmp``, or a new database on the server of ``postgres_url``."""
    if database == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    name = f"polis_like_bench_{secrets.token_hex(4)}"
    _pg_admin(postgres_url, f'CREATE DATABASE "{name}"')
    return postgres_url.rsplit("/", 1)[0] + "/" + name, name


def _pg_admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def machine_info() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_before": os.getloadavg(),
    }


def table(report: dict) -> str:
    lines = [
        f"medians of {report['runs']} runs; {report['export']}",
        "",
        (
            "| database | polis-like import (s) | peak RSS (MB) | read (s) | store (s) "
            "| store adds (MB) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for database in ("sqlite", "postgresql"):
        cli = report.get(f"{database}/cli", {}).get("median")
        store = report.get(f"{database}/store", {}).get("median")
        if not cli or not store:
            continue
        lines.append(
            f"| {database} | {cli['wall_s']:.1f} | {cli['peak_rss_mb']:.0f} "
            f"| {store['read_s']:.1f} | {store['store_s']:.1f} | {store['store_added_mb']:.0f} |"
        )
    votes = report.get("sqlite/votes-during-import")
    if votes:
        lines += [
            "",
            (
                f"SQLite, a vote every 50 ms during the import ({votes['import_wall_s']:.1f} s): "
                f"{votes['votes']} votes, {votes['failures']} failed, median "
                f"{votes['median_ms']:.0f} ms, p99 {votes['p99_ms']:.0f} ms, "
                f"max {votes['max_ms']:.0f} ms"
            ),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
