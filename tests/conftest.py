"""Shared fixtures: the real Pol.is exports in tests/fixtures (CC BY 4.0, see its README)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CONVERSATIONS = sorted(p.name for p in FIXTURES.iterdir() if (p / "votes.csv").exists())


def engine_inputs(conversation):
    """The keyword arguments of ``polis_like.math.compute`` for a whole conversation."""
    return dict(
        n_participants=len(conversation.participant_ids),
        n_statements=len(conversation.statements),
        moderated_out=conversation.moderated_out(),
        meta=conversation.is_meta(),
    )


@pytest.fixture(scope="session")
def load_conversation():
    """Read a fixture conversation once per session: ``load_conversation("vtaiwan.uberx")``."""
    from polis_like.io import read_export

    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = read_export(FIXTURES / name)
        return cache[name]

    return load


# -- the service: every service test runs on SQLite and on PostgreSQL ----------------------

#: The PostgreSQL server the tests use (TEST_POSTGRES_URL overrides it). Each test session makes
#: its own database, and drops it at the end, from the server's `postgres` maintenance database,
#: which every PostgreSQL server has: the database this URL names need not exist.
POSTGRES = "postgresql://postgres@localhost:5432/postgres"
TABLES = (
    "api_tokens",
    "accounts",
    "conversation_moderators",
    "conversations",
    "participants",
    "statements",
    "vote_events",
    "latest_votes",
    "moderation_log",
    "math_results",
    "math_states",
    "math_jobs",
)


def postgres_database_url(server: str, database: str) -> str:
    """The URL of ``database`` on the server of ``server``, with its driver and credentials."""
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=database).render_as_string(hide_password=False)


def maintenance_url(server: str) -> str:
    """The libpq URL of the server's ``postgres`` database, for CREATE and DROP DATABASE."""
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated PostgreSQL database for this test session (dropped at the end)."""
    import os
    import uuid

    import psycopg

    from polis_like.storage.migrate import upgrade

    server = os.environ.get("TEST_POSTGRES_URL", POSTGRES)
    name = f"polis_like_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(maintenance_url(server), autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"the tests need PostgreSQL at {server} (set TEST_POSTGRES_URL): {error}")
    try:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            url = postgres_database_url(server, name)
            upgrade(url)
            yield url
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


@pytest.fixture
def own_postgres(postgres_url):
    """A migrated PostgreSQL database of this test's own, which it may take down or make
    read-only: ``(url, name, maintenance url)``."""
    import uuid

    import psycopg

    from polis_like.storage.migrate import upgrade

    server = postgres_url.rsplit("/", 1)[0] + "/postgres"  # the maintenance database
    name = f"polis_like_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url, name, server
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file that each test copies."""
    from polis_like.storage.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty, migrated database: a new SQLite file, or the emptied PostgreSQL database."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "polis-like.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    return url


@pytest.fixture
def engine(database_url):
    from polis_like.storage.db import make_engine

    engine = make_engine(database_url)
    yield engine
    from worker.runner import join_saves

    join_saves()  # a worker's background save must not outlive the engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    from polis_like.storage.db import session_factory

    return session_factory(engine)


@pytest.fixture
def app(database_url, tmp_path):
    from server.app import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "ROUTING_SEED": 7,
        }
    )
    yield app
    from worker.runner import join_saves

    join_saves()
    app.extensions["polis_like.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def staff(sessions):
    """Bearer headers of an admin and of a moderator: ``staff["admin"]``, ``staff["moderator"]``."""
    from polis_like.storage.accounts import create_account

    headers = {}
    with sessions() as session:
        for role in ("admin", "moderator"):
            _, _, token = create_account(session, f"{role}-1", role=role, password="password-1")
            headers[role] = {"Authorization": f"Bearer {token}"}
        session.commit()
    return headers


def give_conversation(client, staff, conversation_id, name="moderator-1"):
    """Give the moderator account ``name`` the conversation: moderators see and act on only
    the conversations they are given."""
    accounts = client.get("/api/v1/accounts", headers=staff["admin"]).json["accounts"]
    account_id = next(a["id"] for a in accounts if a["name"] == name)
    response = client.put(
        f"/api/v1/conversations/{conversation_id}/moderators",
        json={"account_ids": [account_id]},
        headers=staff["admin"],
    )
    assert response.status_code == 200, response.json


@pytest.fixture
def cli(monkeypatch):
    """``polis_like.launcher.cli.main``, with the engines it makes disposed after each command (the
    commands leave theirs open, which PostgreSQL connections report as a ResourceWarning)."""
    from polis_like.launcher import cli
    from polis_like.storage import migrate

    engines = []
    ensure_current = migrate.ensure_current

    def tracked(url=None):
        engines.append(ensure_current(url))
        return engines[-1]

    monkeypatch.setattr(migrate, "ensure_current", tracked)

    def main(argv):
        try:
            return cli.main(argv)
        finally:
            while engines:
                engines.pop().dispose()

    return main


# -- the real service: gunicorn and a worker as processes ------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(database_url: str, sessions, tmp_path: Path, *, web_processes: int = 1, **env: str):
    """Run the web server (``polis-like serve``, ``web_processes`` processes, 4 request threads
    each) and a worker on the database, with an admin account (``token``) and ``env`` over the
    environment; yields ``{"base", "port", "token", "pid"}`` (``pid``: the web server's)."""
    from polis_like.storage.accounts import create_account

    with sessions() as session:
        _, _, token = create_account(session, "admin", password="password-1")
        session.commit()
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY="http-test",
        POLIS_LIKE_INSTANCE=str(tmp_path),
        **env,
    )
    command = [sys.executable, "-m", "polis_like.launcher.cli"]
    processes = [
        subprocess.Popen(
            command
            + ["serve", "--port", str(port), "--workers", str(web_processes), "--threads", "4"],
            env=env,
            stderr=subprocess.PIPE,
        ),
        subprocess.Popen(command + ["worker"], env=env, stderr=subprocess.PIPE),
    ]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            probe.request("GET", "/healthz")
            probe.getresponse().read()
            break
        except OSError:
            if time.monotonic() > deadline or processes[0].poll() is not None:
                pytest.fail(
                    "the web server did not start: "
                    + processes[0].stderr.read1().decode(errors="replace")
                )
            time.sleep(0.2)
        finally:
            probe.close()
    try:
        yield {"base": base, "port": port, "token": token, "pid": processes[0].pid}
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stderr.close()


@pytest.fixture
def service(database_url, sessions, tmp_path):
    """A running web server (1 process, 4 request threads, room for one event stream) and a
    worker, with an admin account (``token``) on the test's database."""
    with serving(database_url, sessions, tmp_path, POLIS_LIKE_MAX_STREAMS="1") as running:
        yield running


# -- a real browser: Debian's Chromium driven by Playwright ------------------------------------

#: Chromium's flags here: no sandbox (root in CI), and no calls home (the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
#: Screenshots of every page the browser tests visit, kept as CI artefacts.
SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium for the session (``apt-get install chromium``; .ci/run does)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("the browser tests need Chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def create_conversation(service, topic: str, seeds: list[str], **settings) -> int:
    """A conversation made by the admin through the API; its id."""
    body = json.dumps({"topic": topic, "seed_statements": seeds, **settings}).encode()
    request = Request(
        f"{service['base']}/api/v1/conversations",
        data=body,
        headers={"Authorization": f"Bearer {service['token']}", "Content-Type": "application/json"},
    )
    with urlopen(request, timeout=30) as response:
        return json.load(response)["id"]


@pytest.fixture
def page(chromium, service):
    """A new browser (its own cookies) on the service, recording every request it makes."""
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    context_page = context.new_page()
    context_page.requests = []
    context_page.errors = []
    context_page.on("request", lambda request: context_page.requests.append(request.url))
    context_page.on("pageerror", lambda error: context_page.errors.append(str(error)))
    yield context_page
    context.close()


def shoot(page, name: str) -> None:
    """Keep a full-page screenshot as a test artefact (test-artifacts/screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def bare_document(tick: int, computed_ms: int, statements: dict | None = None):
    """A results document with no groups, as the workers' protocol would publish it: the
    ``document`` argument of ``polis_like.storage.jobs.publish``."""
    from polis_like.storage.results import VERSION, Participation, ResultsDocument

    statements = statements or {}
    return ResultsDocument(
        version=VERSION,
        tick=tick,
        computed_ms=computed_ms,
        duration_ms=1.0,
        participation=Participation(
            participants=0,
            votes=0,
            statements=len(statements),
            accepted=len(statements),
            pending=0,
            rejected=0,
        ),
        n_participants=0,
        n_in_conversation=0,
        n_votes=0,
        k=0,
        groups=[],
        base_clusters=[],
        consensus={"agree": [], "disagree": []},
        statements=statements,
        silhouettes={},
    )
