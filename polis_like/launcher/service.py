"""Running the service: the web server (gunicorn), the worker, and ``make run``'s demo setup."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import InputError
from ..settings import Settings, instance_folder
from ..storage.db import database_url, session_factory
from ..storage.migrate import ensure_current, migrated_engine
from .supervise import supervise

DEMO = Path(__file__).parent.parent / "demo" / "vtaiwan.uberx"
ADMIN_PASSWORD_FILE = "admin-password.txt"
COMMAND = [sys.executable, "-m", "polis_like.launcher.cli"]


def check_port(host: str, port: int) -> None:
    """Raise :class:`InputError` (one line) when ``host:port`` cannot be listened on.

    Checked before anything starts: gunicorn would otherwise retry for a while, then exit
    while ``run`` went on as if it were serving.
    """
    if not 0 < port < 65536:
        raise InputError(f"cannot listen on {host}:{port}: a port is from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "the port is already in use" if error.errno == errno.EADDRINUSE else error.strerror
            )
            raise InputError(f"cannot listen on {host}:{port}: {reason}") from None


def serve(settings: Settings) -> None:
    """Serve the app: gunicorn's processes, each a uvicorn event loop in front of the Flask
    app's request threads, with the event streams on the loop (see :mod:`.web`)."""
    from gunicorn.app.base import BaseApplication

    from server.app import create_app
    from server.front import Front

    from .web import Protocol

    Protocol.timeout_s = settings.header_timeout_s

    class Gunicorn(BaseApplication):
        def load_config(self):
            options = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.web_workers,
                "worker_class": "polis_like.launcher.web.Worker",
                # each process listens on a socket of its own (see web.own_listener)
                "reuse_port": True,
                "accesslog": None,
                "errorlog": "-",
                "timeout": 60,
                "graceful_timeout": 5,
                "keepalive": 5,
                # several servers on one machine would share one control socket
                "control_socket_disable": True,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return Front(
                create_app(settings=settings),
                threads=settings.web_threads,
                body_timeout_s=settings.header_timeout_s,
            )

    Gunicorn().run()


def run_worker(settings: Settings, once: bool = False) -> None:
    """The math worker on the settings' database, with the settings' lease and timings."""
    from worker.runner import Worker, warm_up

    warm_up()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with migrated_engine(settings.resolved_database_url()) as engine:
        worker = Worker(
            engine,
            lease_s=settings.worker_lease_s,
            save_every_s=settings.worker_save_s,
            idle_s=settings.worker_idle_s,
            poll_s=settings.worker_poll_s,
            interval_s=settings.worker_interval_s,
            log_every_s=settings.log_every_s,
        )
        if once:
            worker.step()
            worker.release_all()
            return
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop()


def demo_setup(url: str, instance: Path) -> tuple[int, str | None]:
    """Migrate, make the ``admin`` account and import the demo conversation when missing.

    Returns the demo conversation's id and the admin password (kept in the instance folder
    for the demo, mode 0600).
    """
    from ..storage import accounts, conversations
    from ..storage.transfer import import_export

    engine = ensure_current(url)
    sessions = session_factory(engine)
    password_file = Path(instance) / ADMIN_PASSWORD_FILE
    with sessions() as session:
        if accounts.find_account(session, "admin") is None:
            _, password, _ = accounts.create_account(session, "admin", role="admin")
            session.commit()
            password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(password + "\n")
        first = conversations.first_conversation_id(session)
    if first is None:
        first = import_export(sessions, DEMO)
    saved = password_file.read_text().strip() if password_file.exists() else None
    engine.dispose()
    return first, saved


def run_all(settings: Settings) -> int:
    """``make run``: set up, then run the web server and one worker until Ctrl-C.

    The worker is restarted when it ends (see :func:`supervise`); the web server ending ends
    the run with its status.
    """
    check_port(settings.host, settings.port)
    instance = instance_folder(settings)
    url = database_url(settings.resolved_database_url())
    conversation_id, password = demo_setup(url, instance)
    # The children read the same settings, with the database and instance made explicit.
    env = dict(os.environ, DATABASE_URL=url, POLIS_LIKE_INSTANCE=str(instance))
    serve_args = ["serve", "--host", settings.host, "--port", str(settings.port)]
    base = f"http://{settings.host}:{settings.port}"
    kept = instance / ADMIN_PASSWORD_FILE
    sign_in = (
        f"name 'admin', password '{password}' (kept in {kept})"
        if password
        else f"name 'admin' (its password was saved in {kept})"
    )
    print(
        f"""
polis-like is running (Ctrl-C stops it). Open:
  vote:                {base}/c/{conversation_id}
  dashboard:           {base}/c/{conversation_id}/dashboard
  report:              {base}/c/{conversation_id}/report
  moderate:            {base}/c/{conversation_id}/moderate
  admin:               {base}/admin
  staff sign-in:       {base}/signin with {sign_in}
  API description:     {base}/api/v1/openapi.json
""",
        flush=True,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        status, _ = supervise(
            lambda: subprocess.Popen(COMMAND + serve_args, env=env),
            lambda: subprocess.Popen(COMMAND + ["worker"], env=env),
            stop,
        )
    except KeyboardInterrupt:
        return 0
    return status or 0
