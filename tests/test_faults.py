"""Faults, scripted, against the service as deployed (gunicorn and the worker as processes).

The faults that fit in a test: a database that takes no writes (a read-only SQLite file, a
read-only PostgreSQL database) and the worker down, seen in a real browser. The longer ones,
under load (the worker killed mid-computation, PostgreSQL stopped and started, two web servers
and two workers on one database, a full disk), are ``benchmarks/faults.py``; docs/benchmarks.md
("Faults") has every result with its command.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg
import pytest
from conftest import free_port, shoot
from playwright.sync_api import expect
from sqlalchemy import func, select

from polis_like.storage import conversations as store
from polis_like.storage import votes
from polis_like.storage.db import make_engine, session_factory
from polis_like.storage.models import VoteEventRow

API = "/api/v1"
#: The unprivileged account the services run as when the tests run as root, whom file
#: permissions do not bind (a read-only file is read-only to anyone else).
NOBODY = 65534


class Visitor:
    """One participant over real HTTP, with their own cookie."""

    def __init__(self, port: int):
        self.port = port
        self.cookie: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None):
        """(status, headers, parsed JSON or the text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Accept": "application/json"}
            if self.cookie:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookie.items())
            payload = None if body is None else json.dumps(body).encode()
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read().decode()
            for value in response.headers.get_all("Set-Cookie") or []:
                jar = SimpleCookie()
                jar.load(value)
                self.cookie.update({name: morsel.value for name, morsel in jar.items()})
            kind = response.headers.get("Content-Type", "")
            return response.status, response.headers, json.loads(data) if "json" in kind else data
        finally:
            connection.close()

    def vote(self, cid: int, sid: int, value: int = 1):
        return self.request(
            "POST", f"{API}/conversations/{cid}/votes", {"statement_id": sid, "vote": value}
        )


class Service:
    """``polis-like serve`` (1 process, 4 threads) and, unless told not to, ``polis-like worker``
    on ``url``, logging to files in ``folder``; as ``user`` when given (the tests run as root)."""

    def __init__(self, url: str, folder: Path, *, worker=True, env=None, user=None):
        self.folder, self.port = folder, free_port()
        self.env = dict(
            os.environ,
            DATABASE_URL=url,
            SECRET_KEY="fault-test",
            POLIS_LIKE_INSTANCE=str(folder / "instance"),
            PYTHONUNBUFFERED="1",
            **(env or {}),
        )
        self.user = user
        if user is not None:
            self.env["NUMBA_CACHE_DIR"] = numba_cache(folder / "numba-cache", user)
        self.processes: dict[str, subprocess.Popen] = {}
        self.arguments: dict[str, list[str]] = {}
        self.start(
            "server", ["serve", "--port", str(self.port), "--workers", "1", "--threads", "4"]
        )
        if worker:
            self.start("worker", ["worker"])
        self._wait_listening()

    def start(self, name: str, arguments: list[str]) -> None:
        command = [sys.executable, "-m", "polis_like.launcher.cli", *arguments]
        if self.user is not None:  # util-linux's setpriv: Popen(user=...) cannot exec here
            ids = [f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups"]
            command = ["setpriv", *ids, *command]
        with open(self.folder / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.arguments[name] = arguments

    def restart_server(self) -> None:
        """Stop the web server and start it again on its port."""
        server = self.processes["server"]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        self.start("server", self.arguments["server"])
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
        while True:
            try:
                Visitor(self.port).request("GET", "/healthz")
                return
            except OSError:
                if time.monotonic() > deadline or self.processes["server"].poll() is not None:
                    pytest.fail(f"the web server did not start: {self.log('server')}")
                time.sleep(0.2)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def numba_cache(folder: Path, user: int) -> str:
    """A numba cache another account may use, with the kernels this process compiled.

    numba keeps its compiled kernels beside their source, or in the account's home; neither is
    writable by ``nobody``, who would otherwise compile them again (half a minute here)."""
    from numba.core.caching import UserProvidedCacheLocator

    import polis_like.math

    source = Path(polis_like.math.__file__).parent
    target = folder / UserProvidedCacheLocator.get_suitable_cache_subpath(str(source / "x.py"))
    target.mkdir(parents=True, exist_ok=True)
    for path in (source / "__pycache__").glob("*.nb[ic]"):
        shutil.copy(path, target)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, user, user)
    return str(folder)


def seed(url: str, n_camp: int = 24, n_statements: int = 8) -> int:
    """A conversation of two opposite camps, with the worker's first result; its id."""
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            conversation = store.create_conversation(session, {"topic": "Two camps"})
            for n in range(n_statements):
                store.add_statement(
                    session, conversation, f"Statement number {n}", author_pid=None, seed=True
                )
            session.commit()
            cid = conversation.id
            for n in range(n_camp):
                pid, _ = votes.join(session, cid, votes.Who(visitor=f"camp-{n}"))
                for sid in range(n_statements):
                    votes.cast_vote(session, cid, pid, sid, 1 if (n % 2) == (sid % 2) else -1)
            session.commit()
    finally:
        engine.dispose()
    compute(url, cid)
    return cid


def compute(url: str, cid: int, timeout: float = 120.0) -> int:
    """Run a worker here until the conversation's result counts every stored vote; that count.

    On PostgreSQL a worker reads the votes of transactions older than the oldest one running
    on the server (any database's), so a single pass may leave some for the next."""
    from polis_like.storage import jobs
    from polis_like.storage.results import read_document
    from worker.runner import Worker, join_saves

    engine = make_engine(url)
    try:
        worker = Worker(engine)
        deadline = time.monotonic() + timeout
        while True:
            worker.step()
            with session_factory(engine)() as session:
                tick = jobs.current_tick(session, cid)
                document = read_document(session, cid, tick) if tick else None
                stored = session.scalar(
                    select(func.count()).where(VoteEventRow.conversation_id == cid)
                )
            if document is not None and document.participation.votes == stored:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not count the {stored} votes in {timeout:.0f} s")
            time.sleep(0.2)
        worker.release_all()  # its lease, which another worker may take next
        join_saves()
    finally:
        engine.dispose()
    return stored


def stored_votes(url: str, cid: int) -> list[tuple[int, int, int]]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(VoteEventRow.pid, VoteEventRow.sid, VoteEventRow.vote)
                .where(VoteEventRow.conversation_id == cid)
                .order_by(VoteEventRow.id)
            ).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def results_votes(visitor: Visitor, cid: int) -> int | None:
    status, _, document = visitor.request("GET", f"{API}/conversations/{cid}/results")
    return document["participation"]["votes"] if status == 200 else None


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.25)


# -- a database that takes no writes -----------------------------------------------------------


class ReadOnlySQLite:
    """A SQLite file its service may not write (mode 0444, the service not root).

    Made writable again, it takes writes in a new web server: SQLite shares one view of a file
    (its WAL index, mapped read-only then) among a process's connections while any of them is
    open, and the results listener's always is. The worker, which closes its connections in
    an outage, carries on by itself."""

    restart_web = True

    def __init__(self, url: str, folder: Path):
        self.path = Path(url.removeprefix("sqlite:///"))
        self.user = NOBODY if os.geteuid() == 0 else None
        if self.user is not None:  # root writes anything: the services run as nobody
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, self.user, self.user)

    def refuse_writes(self) -> None:
        self.path.chmod(0o444)

    def take_writes(self) -> None:
        # as an operator would: the file and its WAL index, made read-only like the file
        for path in self.path.parent.glob(self.path.name + "*"):
            path.chmod(0o644)

    def check(self) -> None:
        with sqlite3.connect(self.path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        connection.close()


class ReadOnlyPostgres:
    """A PostgreSQL database set read-only (``default_transaction_read_only``), as a standby
    is: sessions already open keep what they began with, so they are ended."""

    user = None
    restart_web = False

    def __init__(self, name: str, server: str):
        self.name, self.server = name, server

    def refuse_writes(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {self.name} SET default_transaction_read_only = on")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )

    def take_writes(self) -> None:
        # The sessions opened meanwhile stay read-only: the service must replace them itself.
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {self.name} RESET default_transaction_read_only")

    def check(self) -> None:
        pass  # PostgreSQL checks its pages itself; the counts below are the check


@pytest.fixture(params=["sqlite", "postgresql"])
def read_only(request, sqlite_template):
    """(database URL, its fault, a folder for the services) with a seeded conversation."""
    folder = Path(tempfile.mkdtemp(prefix="polis-like-faults-"))
    folder.chmod(0o755)
    try:
        if request.param == "sqlite":
            shutil.copy(sqlite_template, folder / "polis-like.db")
            url = f"sqlite:///{folder / 'polis-like.db'}"
            cid = seed(url)
            fault = ReadOnlySQLite(url, folder)
        else:
            url, name, server = request.getfixturevalue("own_postgres")
            cid = seed(url)
            fault = ReadOnlyPostgres(name, server)
        yield url, fault, folder, cid
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_read_only_database_refuses_votes_with_503_keeps_reads_and_recovers(read_only):
    url, fault, folder, cid = read_only
    before = stored_votes(url, cid)
    fault.refuse_writes()
    service = Service(url, folder, user=fault.user)
    stream = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    try:
        # A watcher's event stream: its listener holds a connection of its own all along.
        stream.request("GET", f"{API}/conversations/{cid}/events")
        events = stream.getresponse()
        assert b"event: results\n" in [events.readline() for _ in range(4)]
        reader, voter = Visitor(service.port), Visitor(service.port)
        status, _, _ = voter.request("GET", f"{API}/conversations/{cid}/next")
        assert status == 200
        refused = []
        for _ in range(5):  # a session ended under it may first answer "unavailable"
            status, headers, body = voter.vote(cid, 0)
            assert status == 503, body
            assert int(headers["Retry-After"]) > 0 and body["error"]["status"] == 503
            refused.append(body["error"]["message"])
            if "read-only" in refused[-1]:
                break
        assert refused[-1] == (
            "the database is read-only; nothing can be saved until it is fixed, reading still works"
        )
        # Reading goes on: the conversation, its results, the pages, the health check.
        for path in (
            f"{API}/conversations/{cid}",
            f"{API}/conversations/{cid}/results",
            f"/c/{cid}",
            f"/c/{cid}/dashboard",
            "/healthz",
        ):
            status, _, body = reader.request("GET", path)
            assert status == 200, (path, body)
        time.sleep(2)  # the worker meets the refusal too
        assert service.processes["worker"].poll() is None, service.log("worker")
        assert stored_votes(url, cid) == before

        fault.take_writes()
        if fault.restart_web:
            stream.close()
            service.restart_server()
        acknowledged = wait_until(lambda: voter.vote(cid, 0)[0] == 200, 30, "no vote taken")
        assert acknowledged
        for sid in (1, 2):
            status, _, body = voter.vote(cid, sid, -1)
            assert status == 200, body
        after = stored_votes(url, cid)
        pid = body["participant"]
        assert after[: len(before)] == before
        assert sorted(after[len(before) :]) == [(pid, 0, 1), (pid, 1, -1), (pid, 2, -1)]
        # the worker carries on by itself, and its results count every stored vote
        wait_until(
            lambda: results_votes(reader, cid) == len(after), 90, "the results did not catch up"
        )
    finally:
        stream.close()
        service.stop()
    fault.check()
    for name in ("server", "worker"):
        assert "Traceback" not in service.log(name), service.log(name)


# -- the worker down: the pages keep the last results and say they may be stale ---------------


def test_with_the_worker_down_the_pages_keep_the_last_results_and_say_they_may_be_stale(
    database_url, chromium, tmp_path
):

    cid = seed(database_url)
    # The worker is down: the web server alone, which counts votes as late past 1 s.
    service = Service(database_url, tmp_path, worker=False, env={"POLIS_LIKE_WORKER_LAG_S": "1"})
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        base = f"http://127.0.0.1:{service.port}"
        page.goto(f"{base}/c/{cid}")  # one more participant, with the first camp
        for voted in range(1, 9):
            sid = int(page.locator("#statement").get_attribute("data-id"))
            page.keyboard.press("a" if sid % 2 == 0 else "d")
            if voted < 8:
                expect(page.locator("#progress")).to_contain_text(f"{voted + 1} of 8")
        expect(page.locator("#done")).to_be_visible()
        assert compute(database_url, cid) == 24 * 8 + 8  # the worker was up: it placed them
        last = results_votes(Visitor(service.port), cid)
        assert last == 24 * 8 + 8

        other = Visitor(service.port)  # then it is down, and votes keep coming
        other.request("GET", f"{API}/conversations/{cid}/next")
        for sid in range(3):
            assert other.vote(cid, sid)[0] == 200
        time.sleep(1.5)

        page.goto(f"{base}/c/{cid}")
        expect(page.locator("#standing")).to_contain_text("You are in group")
        expect(page.locator("#standing-stale")).to_have_text(
            "This may be out of date: the latest votes are not counted in it yet."
        )
        shoot(page, f"faults-participant-stale-{cid}")
        page.goto(f"{base}/c/{cid}/dashboard")
        expect(page.locator("#n-votes")).to_have_text(f"{last} votes")  # the last results
        warning = page.locator("#worker-warning")
        expect(warning).to_be_visible()
        # Rendered with the page, then the script's own check of /healthz.
        expect(warning).to_have_text(
            re.compile(
                r"These results may be out of date: the latest votes are not counted in them yet\."
                r"|The results are running behind: the worker is \d+ s behind the votes\."
            )
        )
        shoot(page, f"faults-dashboard-stale-{cid}")

        assert compute(database_url, cid) == last + 3  # the worker is back
        page.goto(f"{base}/c/{cid}")
        expect(page.locator("#standing")).to_contain_text("You are in group")
        assert page.locator("#standing-stale").count() == 0
        page.goto(f"{base}/c/{cid}/dashboard")
        expect(page.locator("#n-votes")).to_have_text(f"{last + 3} votes")
        expect(page.locator("#worker-warning")).to_be_hidden()
        assert errors == []
    finally:
        context.close()
        service.stop()
    assert "Traceback" not in service.log("server")
