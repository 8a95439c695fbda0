"""Alembic migrations, run from code: ``polis-like db upgrade`` calls :func:`upgrade`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .db import database_url, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (the newest by default)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    return current_revision(engine) == head


def ensure_current(url: str | None = None) -> Engine:
    """Upgrade if needed and return an engine (for ``make run`` and the tests)."""
    engine = make_engine(url)
    if not is_current(engine):
        upgrade(engine.url.render_as_string(hide_password=False))
    return engine


@contextmanager
def migrated_engine(url: str | None = None) -> Iterator[Engine]:
    """:func:`ensure_current`'s engine, disposed (its connections closed) on leaving."""
    engine = ensure_current(url)
    try:
        yield engine
    finally:
        engine.dispose()
