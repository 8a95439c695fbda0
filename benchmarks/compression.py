"""What gzip saves on the wire, and what it costs, for the demo conversation.

A temporary SQLite database gets the real ``vtaiwan.uberx`` conversation (imported, its first
result computed by the worker in this process) and an admin token, then ``polis-like serve``
(gunicorn, as deployed) runs on it. For each URL the benchmark reads the body as sent without
``Accept-Encoding`` and with ``Accept-Encoding: gzip`` (checking that the latter decompresses to
the former) and times ``--runs`` requests of each over HTTP (median, after one warm-up: the gzip
requests after the first are served from the process's cache of compressed bodies). It then
times zlib alone on the results documents, ``votes.csv`` and the positions at levels 1, 5, 6
and 9 (the fastest of ``--runs``): what the first reader of a new tick pays, once per web process.

    .venv/bin/python benchmarks/compression.py [--runs 20]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from urllib.request import urlopen

from dashboard import computed_fixture, free_port


def prepare(url: str) -> tuple[int, str]:
    """Migrate, import the fixture, compute its first result; (conversation id, admin token)."""
    from polis_like.storage.accounts import create_account

    with computed_fixture(url) as (sessions, cid), sessions() as session:
        _, _, token = create_account(session, "admin", password="password-1")
        session.commit()
    return cid, token


def serve(url: str, folder: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench", POLIS_LIKE_INSTANCE=folder)
    process = subprocess.Popen(
        [sys.executable, "-m", "polis_like.launcher.cli", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the web server did not start") from None
            time.sleep(0.2)


def get(port: int, path: str, headers: dict) -> tuple[float, bytes, str | None]:
    """(milliseconds, body as sent, Content-Encoding) of one GET on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200, (path, response.status)
    encoding = response.getheader("Content-Encoding")
    connection.close()
    return elapsed, body, encoding


def measure(port: int, path: str, token: str, runs: int) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    identity = [get(port, path, auth) for _ in range(runs + 1)]
    gzipped = [get(port, path, {**auth, "Accept-Encoding": "gzip"}) for _ in range(runs + 1)]
    plain, packed = identity[-1][1], gzipped[-1][1]
    if gzipped[-1][2] == "gzip":
        assert gzip.decompress(packed) == plain, path
    return {
        "path": path,
        "identity": len(plain),
        "gzip": len(packed) if gzipped[-1][2] == "gzip" else None,
        "identity_ms": statistics.median(t for t, _, _ in identity[1:]),
        "gzip_ms": statistics.median(t for t, _, _ in gzipped[1:]),
        "body": plain,
    }


def zlib_ms(data: bytes, level: int, runs: int) -> tuple[int, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        size = len(zlib.compress(data, level, wbits=31))
        times.append((time.perf_counter() - start) * 1000)
    return size, min(times)  # the fastest: the least disturbed by other work on the machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="polis-like-gzip-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        cid, token = prepare(url)
        process, port = serve(url, folder)
        try:
            paths = [
                f"/api/v1/conversations/{cid}/results",
                f"/api/v1/conversations/{cid}/results?include=texts",
                f"/api/v1/conversations/{cid}/participation",
                f"/api/v1/conversations/{cid}/export/participants-votes.csv",
                f"/api/v1/conversations/{cid}/export/votes.csv",
                f"/c/{cid}/report",
                "/static/vendor/uplot/uPlot.esm.js",
                f"/api/v1/conversations/{cid}/positions",
                f"/api/v1/conversations/{cid}/export.zip",
            ]
            rows = [measure(port, path, token, args.runs) for path in paths]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print("| what | identity bytes | gzip bytes | ratio | request, identity | request, gzip |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        size = f"{row['gzip']:,}" if row["gzip"] else "not compressed"
        ratio = f"{row['gzip'] / row['identity']:.0%}" if row["gzip"] else ""
        print(
            f"| `{row['path']}` | {row['identity']:,} | {size} | {ratio} "
            f"| {row['identity_ms']:.1f} ms | {row['gzip_ms']:.1f} ms |"
        )
    print()
    print("| zlib alone, by level | gzip bytes | time (fastest) |")
    print("| --- | ---: | ---: |")
    for row in rows[:2] + rows[4:5] + rows[-2:-1]:
        for level in (1, 5, 6, 9):
            size, ms = zlib_ms(row["body"], level, args.runs)
            print(f"| `{row['path']}`, level {level} | {size:,} | {ms:.2f} ms |")


if __name__ == "__main__":
    sys.exit(main())
