"""Running the service: the web server (gunicorn), the worker, and ``make run``'s demo setup."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from ..storage.db import database_url, session_factory
from ..storage.migrate import ensure_current, migrated_engine

DEMO = Path(__file__).parent.parent / "demo" / "vtaiwan.uberx"
ADMIN_PASSWORD_FILE = "admin-password.txt"


def serve(host: str, port: int, workers: int, threads: int, url: str | None = None) -> None:
    """Serve the app with gunicorn's threaded workers (event streams hold a thread each)."""
    from gunicorn.app.base import BaseApplication

    from server.app import create_app

    class Gunicorn(BaseApplication):
        def load_config(self):
            settings = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                        "worker_class": "gthread", "accesslog": None, "errorlog": "-",
                        "timeout": 60, "graceful_timeout": 5, "keepalive": 5,
                        # several servers on one machine would share one control socket
                        "control_socket_disable": True}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return create_app({"DATABASE_URL": database_url(url),
                               "MAX_STREAMS": max(1, workers * threads - workers * 4) // workers})

    Gunicorn().run()


def run_worker(url: str | None = None, once: bool = False) -> None:
    from worker.runner import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with migrated_engine(url) as engine:
        worker = Worker(engine)
        if once:
            worker.step()
            worker.release_all()
            return
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop()


def demo_setup(url: str | None = None, var: str = "var") -> tuple[int, str | None]:
    """Migrate, make the ``admin`` account and import the demo conversation when missing.

    Returns the demo conversation's id and the admin password (kept in ``var/`` for the demo).
    """
    from ..storage import accounts
    from ..storage.models import AccountRow, ConversationRow
    from ..storage.transfer import import_export

    engine = ensure_current(url)
    sessions = session_factory(engine)
    password_file = Path(var) / ADMIN_PASSWORD_FILE
    with sessions() as session:
        if session.scalar(select(AccountRow.id).where(AccountRow.name == "admin")) is None:
            _, password, _ = accounts.create_account(session, "admin", role="admin")
            session.commit()
            password_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(password + "\n")
        first = session.scalar(select(func.min(ConversationRow.id)))
    if first is None:
        first = import_export(sessions, DEMO)
    password = password_file.read_text().strip() if password_file.exists() else None
    engine.dispose()
    return first, password


def run_all(host: str, port: int, url: str | None = None) -> int:
    """``make run``: set up, then run the web server and one worker until Ctrl-C."""
    conversation_id, password = demo_setup(url)
    env = dict(os.environ, DATABASE_URL=database_url(url))
    python = sys.executable
    worker = subprocess.Popen([python, "-m", "polis_like.launcher.cli", "worker"], env=env)
    web = subprocess.Popen([python, "-m", "polis_like.launcher.cli", "serve", "--host", host,
                            "--port", str(port)], env=env)
    base = f"http://{host}:{port}"
    sign_in = (f"name 'admin', password '{password}' (kept in var/{ADMIN_PASSWORD_FILE})"
               if password else f"name 'admin' (its password was saved in var/{ADMIN_PASSWORD_FILE})")
    print(f"""
polis-like is running (Ctrl-C stops it).
  API:                 {base}/api/v1/conversations/{conversation_id}
  next statement:      {base}/api/v1/conversations/{conversation_id}/next
  results:             {base}/api/v1/conversations/{conversation_id}/results
  live events:         {base}/api/v1/conversations/{conversation_id}/events
  API description:     {base}/api/v1/openapi.json
  admin sign-in:       POST {base}/api/v1/session with {sign_in}
""", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        while web.poll() is None and worker.poll() is None:
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for process in (web, worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


def _exit_on_signal(_signum, _frame) -> None:
    raise SystemExit(0)
