"""``polis-like run``'s two children: the web server must stay up, the worker may come back.

A database outage can end the worker process; the web server goes on answering (503 while the
database is away), so the launcher starts a new worker after a growing pause instead of
taking the web server down with it. The web server ending ends the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from subprocess import Popen

log = logging.getLogger("polis_like.launcher")


def supervise(
    start_web: Callable[[], Popen],
    start_worker: Callable[[], Popen],
    stop: threading.Event,
    *,
    first_backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    healthy_after_s: float = 60.0,
    check_s: float = 0.5,
) -> tuple[int | None, int]:
    """Run both until ``stop`` is set or the web server ends; restart the worker when it ends.

    The pause before a restart doubles from ``first_backoff_s`` up to ``max_backoff_s``, and
    starts again from the first once a worker has lived ``healthy_after_s``. Each restart is
    one log line. Returns the web server's exit status (None if it was still running) and the
    number of restarts; both children are stopped on return.
    """
    web = start_web()
    worker: Popen | None = start_worker()
    started = time.monotonic()
    backoff_s = first_backoff_s
    restart_at = 0.0
    restarts = 0
    try:
        while not stop.is_set() and web.poll() is None:
            if worker is not None and worker.poll() is not None:
                lived_s = time.monotonic() - started
                if lived_s >= healthy_after_s:
                    backoff_s = first_backoff_s
                log.warning(
                    "the worker exited with status %s after %.0f s; restarting it in %g s",
                    worker.returncode,
                    lived_s,
                    backoff_s,
                )
                restart_at = time.monotonic() + backoff_s
                backoff_s = min(max_backoff_s, backoff_s * 2)
                worker = None
            if worker is None and time.monotonic() >= restart_at:
                worker = start_worker()
                started = time.monotonic()
                restarts += 1
            stop.wait(check_s)
        return web.poll(), restarts
    finally:
        stop_all([web] + ([worker] if worker is not None else []))


def stop_all(processes: list[Popen], timeout_s: float = 15.0) -> None:
    """SIGTERM each process still running, then wait for them (SIGKILL after ``timeout_s``)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except Exception:
            process.kill()
            process.wait()
