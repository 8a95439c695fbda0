"""Shared fixtures: the real Pol.is exports in tests/fixtures (CC BY 4.0, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CONVERSATIONS = sorted(p.name for p in FIXTURES.iterdir() if (p / "votes.csv").exists())


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
