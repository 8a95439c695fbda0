"""Database outages, for real: the API answers 503 with Retry-After (never a 500, never a
traceback a request), the results listener reconnects, /healthz tells, and `polis-like run`
keeps its web server while the worker comes and goes."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
from sqlalchemy import select, text

from polis_like.storage import conversations as store
from polis_like.storage.db import make_engine, now_ms, session_factory
from polis_like.storage.models import JobRow, ParticipantRow, VoteEventRow
from polis_like.throttle import ThrottledLog

API = "/api/v1"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_conversation(sessions) -> int:
    with sessions() as session:
        conversation = store.create_conversation(session, {"topic": "outage"})
        store.add_statement(session, conversation, "a statement", author_pid=None, seed=True)
        session.commit()
        return conversation.id


def assert_503(response):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"]["status"] == 503


def tracebacks(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


def take_down(server: str, name: str, allow: bool) -> None:
    """Refuse (or allow again) connections to ``name`` and end the open ones: an outage."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'true' if allow else 'false'}")
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )


# -- the API during an outage ----------------------------------------------------------------


def test_an_unreachable_postgresql_gives_503_with_retry_after_and_one_log_line(caplog):
    from server.app import create_app

    app = create_app(
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/none", "SECRET_KEY": "k"}
    )
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert_503(client.get(f"{API}/conversations/1"))
            assert_503(
                client.post(f"{API}/conversations/1/votes", json={"statement_id": 0, "vote": 1})
            )
        health = client.get("/healthz")
    assert_503(health)
    assert health.json["database"] == "unavailable" and health.json["worker"] is None
    assert not tracebacks(caplog)
    outages = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outages) == 1
    app.extensions["polis_like.engine"].dispose()


def test_a_postgresql_outage_gives_503_then_the_api_recovers(own_postgres, caplog):
    from server.app import create_app

    url, name, server = own_postgres
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "k"})
    cid = one_conversation(app.extensions["polis_like.sessions"])
    browser = app.test_client()
    vote = {"statement_id": 0, "vote": 1}
    assert browser.post(f"{API}/conversations/{cid}/votes", json=vote).status_code == 200
    try:
        take_down(server, name, allow=False)
        with caplog.at_level(logging.WARNING):
            assert_503(browser.post(f"{API}/conversations/{cid}/votes", json=vote))
            assert_503(browser.get(f"{API}/conversations/{cid}"))
            assert_503(browser.get("/healthz"))
        assert not tracebacks(caplog)
    finally:
        take_down(server, name, allow=True)
    assert browser.post(f"{API}/conversations/{cid}/votes", json=vote).status_code == 200
    assert browser.get("/healthz").json["database"] == "ok"
    app.extensions["polis_like.engine"].dispose()


def test_a_sqlite_write_lock_past_the_busy_timeout_gives_503_not_500(
    tmp_path, sqlite_template, caplog
):
    import shutil

    from server.app import create_app

    shutil.copy(sqlite_template, tmp_path / "locked.db")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'locked.db'}",
            "SECRET_KEY": "k",
            "SQLITE_BUSY_S": 0.2,
        }
    )
    cid = one_conversation(app.extensions["polis_like.sessions"])
    browser = app.test_client()
    vote = {"statement_id": 0, "vote": 1}
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a big import, say, holding the write lock
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            assert_503(browser.post(f"{API}/conversations/{cid}/votes", json=vote))
        assert time.monotonic() - started < 5
        assert browser.get(f"{API}/conversations/{cid}").status_code == 200  # reads go on
        assert not tracebacks(caplog)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert browser.post(f"{API}/conversations/{cid}/votes", json=vote).status_code == 200
    app.extensions["polis_like.engine"].dispose()


# -- /healthz --------------------------------------------------------------------------------


def test_healthz_reports_the_age_of_the_oldest_vote_the_worker_has_not_read(app, client, sessions):
    assert client.get("/healthz").json == {"database": "ok", "worker": {"lag_s": 0.0, "ok": True}}
    cid = one_conversation(sessions)
    with sessions() as session:
        session.add(
            ParticipantRow(
                conversation_id=cid, pid=0, visitor="v", xid=None, banned=False, created_ms=0
            )
        )
        session.commit()
        for age_s in (120, 5):  # one transaction each
            session.add(
                VoteEventRow(
                    conversation_id=cid, pid=0, sid=0, vote=1, created_ms=now_ms() - age_s * 1000
                )
            )
            session.commit()
    lagging = client.get("/healthz")
    assert lagging.status_code == 200  # a slow worker does not take the web process out
    assert 119 < lagging.json["worker"]["lag_s"] < 130 and lagging.json["worker"]["ok"] is False
    with sessions() as session:
        first, second = sorted(session.scalars(select(VoteEventRow.id)))
        job = session.get(JobRow, cid)
        job.high_water = first  # the worker has read the older vote, not the newer one
        if session.get_bind().dialect.name == "postgresql":
            job.read_tx = session.scalar(
                text("SELECT tx FROM vote_events WHERE id = :id"), {"id": second}
            )
        session.commit()
    caught_up = client.get("/healthz").json["worker"]
    assert 4 < caught_up["lag_s"] < 15 and caught_up["ok"] is True


# -- the results listener ----------------------------------------------------------------------


def test_the_results_listener_reconnects_after_its_connection_is_terminated(own_postgres, caplog):
    from polis_like.storage.notify import RESULTS, Waiter

    caplog.set_level(logging.INFO, logger="polis_like.storage")
    url, _name, server = own_postgres
    engine = make_engine(url)
    waiter = Waiter(engine, RESULTS)
    try:
        assert waiter.wait(0.05) == set()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (waiter._connection.info.backend_pid,))
        answers = []
        deadline = time.monotonic() + 10
        while None not in answers and time.monotonic() < deadline:
            answers.append(waiter.wait(0.5))
        assert answers[-1] is None  # reconnected: something may have changed meanwhile
        with psycopg.connect(psycopg_url(url), autocommit=True) as other:
            other.execute("SELECT pg_notify(%s, '42')", (RESULTS,))
        assert waiter.wait(5) == {42}
    finally:
        waiter.close()
        engine.dispose()
    assert "lost its connection" in caplog.text and "reconnected" in caplog.text


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_the_broadcaster_logs_an_outage_once_without_traceback(caplog):
    from server.api.broadcast import Broadcaster

    engine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/none")
    broadcaster = Broadcaster(engine, session_factory(engine))
    with caplog.at_level(logging.INFO):
        broadcaster.open(1, limit=10)
        time.sleep(3)  # three polls a second apart used to log three tracebacks
        broadcaster.stop()
    engine.dispose()
    assert not tracebacks(caplog)
    assert len([r for r in caplog.records if "broadcaster" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "lost its connection" in r.getMessage()]) == 1


def test_a_throttled_log_says_a_repeated_error_once_per_interval_with_the_count(caplog):
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("test.throttle"), 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        assert throttled.warning("down", "database down") is True
        for second in range(1, 6):
            now[0] = second
            assert throttled.warning("down", "database down") is False
        assert throttled.warning("other", "another kind") is True
        now[0] = 10.5
        assert throttled.warning("down", "database down") is True
    assert [r.getMessage() for r in caplog.records] == [
        "database down",
        "another kind",
        "database down (5 more like it in the last 10 s)",
    ]


# -- polis-like run keeps its web server -------------------------------------------------------


def test_run_restarts_a_worker_that_dies_and_keeps_the_web_server():
    from polis_like.launcher.supervise import supervise

    python = [sys.executable, "-c"]
    workers: list[subprocess.Popen] = []

    def start_worker():
        workers.append(subprocess.Popen(python + ["import sys; sys.exit(3)"]))
        return workers[-1]

    web: list[subprocess.Popen] = []

    def start_web():
        web.append(subprocess.Popen(python + ["import time; time.sleep(60)"]))
        return web[-1]

    stop = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            zip(
                ("status", "restarts"),
                supervise(
                    start_web,
                    start_worker,
                    stop,
                    first_backoff_s=0.1,
                    max_backoff_s=0.4,
                    check_s=0.05,
                ),
                strict=True,
            )
        )
    )
    thread.start()
    deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
    while len(workers) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) >= 4, "the worker was not restarted three times"
    assert web[0].poll() is None  # still serving
    stop.set()
    thread.join(20)
    assert result["status"] is None and result["restarts"] >= 3
    assert len(workers) == result["restarts"] + 1
    assert web[0].poll() is not None  # stopped on the way out
    # Every worker but the newest died by itself; the newest may have been stopped on the way out.
    assert all(worker.poll() == 3 for worker in workers[:-1])
    assert workers[-1].poll() is not None


def test_run_ends_with_the_web_servers_status_when_it_ends():
    from polis_like.launcher.supervise import supervise

    python = [sys.executable, "-c"]
    workers = []

    def start_worker():
        workers.append(subprocess.Popen(python + ["import time; time.sleep(60)"]))
        return workers[-1]

    status, restarts = supervise(
        lambda: subprocess.Popen(python + ["import sys; sys.exit(4)"]),
        start_worker,
        threading.Event(),
        check_s=0.05,
    )
    assert (status, restarts) == (4, 0)
    assert workers[0].poll() is not None
