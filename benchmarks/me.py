"""What ``GET /me`` ("where do I stand") costs as a conversation grows, and whether the results
table stays its size while results keep coming.

For each database and each size, a fresh database gets a conversation, one participant (the
one asking) and a published result placing ``n`` participants; ``/me`` is then asked
``--runs`` times through the app (Flask's test client: the server's own cost, no network),
and the median and 95th percentile are reported. Then ``--ticks`` results of the largest size
are published one after another, as the worker does (the last ten are kept, and the space of
deleted ones is reclaimed every ``RECLAIM_EVERY_S``: every ten results at the worker's pace of
one a second), and the size of the results table (with
its TOAST table on PostgreSQL) is reported every so often: it must level off, not grow with
the ticks.

    .venv/bin/python benchmarks/me.py [--sizes 300 100000] [--runs 300] [--ticks 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sqlalchemy import text, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import _pg_admin, fresh_database

from polis_like.settings import Settings
from polis_like.storage.db import session_factory
from polis_like.storage.jobs import KEEP_RESULTS, reclaim_space
from polis_like.storage.migrate import ensure_current
from polis_like.storage.models import JobRow, ResultRow
from polis_like.storage.results import positions_blob
from worker.runner import RECLAIM_EVERY_S

POSTGRES_URL = os.environ.get(
    "POLIS_LIKE_BENCH_POSTGRES", "postgresql://postgres@localhost:5432/postgres"
)


def _positions(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    result = SimpleNamespace(
        x=rng.normal(size=n), y=rng.normal(size=n), group=rng.integers(0, 4, size=n)
    )
    return positions_blob(result)


def _publish(sessions, cid: int, tick: int, blob: bytes) -> None:
    with sessions() as session:
        session.add(
            ResultRow(
                conversation_id=cid,
                tick=tick,
                high_water=0,
                computed_ms=int(time.time() * 1000),
                duration_ms=1.0,
                result="{}",
                positions=blob,
            )
        )
        session.execute(
            ResultRow.__table__.delete().where(
                ResultRow.conversation_id == cid, ResultRow.tick <= tick - KEEP_RESULTS
            )
        )
        session.execute(update(JobRow).where(JobRow.conversation_id == cid).values(tick=tick))
        session.commit()


def _table_bytes(engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return connection.scalar(text("SELECT pg_total_relation_size('math_results')"))
        pages = connection.scalar(text("PRAGMA page_count"))
        free = connection.scalar(text("PRAGMA freelist_count"))
        size = connection.scalar(text("PRAGMA page_size"))
        return (pages - free) * size


def measure(database: str, sizes: list[int], runs: int, ticks: int, tmp: Path) -> dict:
    from server.app import create_app

    url, name = fresh_database(database, POSTGRES_URL, tmp)
    engine = ensure_current(url)
    sessions = session_factory(engine)
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "RATE_LIMITS": False}
    )
    client = app.test_client()
    report: dict = {"database": database, "me": {}, "table": []}
    try:
        admin = {"topic": "me", "seed_statements": ["one", "two"]}
        from polis_like.storage.accounts import create_account

        with sessions() as session:
            _, _, token = create_account(session, "bench", role="admin", password="password-1")
            session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        tick = 0
        for n in sizes:
            cid = client.post("/api/v1/conversations", json=admin, headers=headers).json["id"]
            client.post(f"/api/v1/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
            tick = 1
            _publish(sessions, cid, tick, _positions(n, n))
            path = f"/api/v1/conversations/{cid}/me"
            assert client.get(path).json["x"] is not None
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            report["me"][n] = {
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            }
            print(f"{database} /me with {n:,} participants: {report['me'][n]}", flush=True)
        blob = _positions(sizes[-1], 0)
        # A worker publishes a conversation's result at most once a second (the default
        # interval) and reclaims space every RECLAIM_EVERY_S: every so many results here.
        every = max(1, round(RECLAIM_EVERY_S / Settings().worker_interval_s))
        for i in range(1, ticks + 1):
            _publish(sessions, cid, tick + i, blob)
            if i % every == 0:
                reclaim_space(engine)
            if i % max(1, ticks // 10) == 0:
                size = _table_bytes(engine)
                report["table"].append({"ticks": i, "bytes": size})
                print(f"{database} after {i} results: math_results {size / 1e6:.1f} MB", flush=True)
    finally:
        app.extensions["polis_like.engine"].dispose()
        engine.dispose()
        if name:
            _pg_admin(POSTGRES_URL, f'DROP DATABASE "{name}"')
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[300, 100_000])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reports = []
    for database in args.databases:
        with tempfile.TemporaryDirectory() as tmp:
            reports.append(measure(database, args.sizes, args.runs, args.ticks, Path(tmp)))
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
