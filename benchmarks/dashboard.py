"""How long the dashboard takes to draw 100k participants in headless Chromium.

A temporary SQLite database gets the real ``vtaiwan.uberx`` conversation (its groups, texts and
first result computed by the worker, in this process), then ``polis-like serve`` runs on it and
Debian's Chromium opens ``/c/<id>/dashboard`` with the ``/positions`` response stubbed through
Playwright's ``page.route``: ``--participants`` synthetic positions (default 100k) in the API's
binary form, in as many blobs as the result has groups, with a few unplaced. The figure is the
page's own ``map-draw`` measure: ``map.update`` (bounds, group outlines and centres, the canvas
pixels, the SVG layer), median of ``--runs`` page loads (default 7).

    .venv/bin/python benchmarks/dashboard.py [--participants 100000] [--runs 7]

It also prints when the map was drawn after the navigation began (the page, its scripts, the
three API reads and the draw), for context; the target (0.5 s) is for the draw.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "vtaiwan.uberx"
TARGET_MS = 500.0


def synthetic_positions(n: int, k: int, seed: int = 0) -> bytes:
    """``n`` participants in ``k`` Gaussian blobs, as the positions route's body."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, k, n).astype("<i2")
    centres = rng.normal(scale=4.0, size=(k, 2))
    x = (centres[group, 0] + rng.normal(size=n)).astype("<f4")
    y = (centres[group, 1] + rng.normal(size=n)).astype("<f4")
    unplaced = rng.random(n) < 0.01
    x[unplaced] = np.nan
    y[unplaced] = np.nan
    group[unplaced] = -1
    return x.tobytes() + y.tobytes() + group.tobytes()


@contextmanager
def computed_fixture(url: str):
    """Migrate, import the fixture and compute its first result; yields (sessions, its id)."""
    from polis_like.storage.db import session_factory
    from polis_like.storage.migrate import migrated_engine
    from polis_like.storage.transfer import import_export
    from worker.runner import Worker, join_saves

    with migrated_engine(url) as engine:
        sessions = session_factory(engine)
        cid = import_export(sessions, FIXTURE)
        Worker(engine).step()
        join_saves()
        yield sessions, cid


def prepare(url: str) -> tuple[int, int]:
    """Migrate, import the fixture and compute its first result; (conversation id, k)."""
    from polis_like.storage import results

    with computed_fixture(url) as (sessions, cid), sessions() as session:
        _, text = results.latest_text(session, cid)
    assert text is not None, "the worker published no result"
    return cid, results.ResultsDocument.from_json(text).k


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(url: str, folder: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench", POLIS_LIKE_INSTANCE=folder)
    process = subprocess.Popen(
        [sys.executable, "-m", "polis_like.launcher.cli", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urlopen(f"{base}/healthz", timeout=1).read()
            return process, base
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the web server did not start") from None
            time.sleep(0.2)


def measure(base: str, cid: int, body: bytes, runs: int) -> list[tuple[float, float]]:
    """The page's ``map-draw`` measure and when it ended after the navigation began (ms), over
    ``runs`` fresh page loads."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("needs Chromium: apt-get install chromium")
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(runs + 1):  # the first load warms the caches and the JIT: not counted
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.route(
                "**/positions",
                lambda route: route.fulfill(
                    status=200,
                    body=body,
                    headers={"Content-Type": "application/octet-stream", "ETag": '"bench"'},
                ),
            )
            page.goto(f"{base}/c/{cid}/dashboard")
            page.locator("#map-overlay .group-label").first.wait_for()
            draw = page.evaluate(
                "performance.getEntriesByName('map-draw')"
                ".map(e => [e.duration, e.startTime + e.duration])"
            )
            times.append(tuple(draw[0]))
            context.close()
        browser.close()
    return times[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="polis-like-dashboard-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        cid, k = prepare(url)
        body = synthetic_positions(options.participants, k)
        process, base = serve(url, folder)
        try:
            times = measure(base, cid, body, options.runs)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    draws = [draw for draw, _ in times]
    median = statistics.median(draws)
    print(
        f"dashboard map draw, {options.participants:,} participants in {k} groups "
        f"({len(body) / 1e6:.1f} MB of positions): median {median:.1f} ms over {len(draws)} "
        f"runs (min {min(draws):.1f}, max {max(draws):.1f}); target {TARGET_MS:.0f} ms: "
        f"{'met' if median < TARGET_MS else 'MISSED'}; map drawn a median "
        f"{statistics.median(end for _, end in times):.0f} ms after the navigation began"
    )
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
