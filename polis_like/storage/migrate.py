"""Alembic migrations, run from code: ``polis-like db upgrade`` calls :func:`upgrade`.

Every command checks first that the database is at the newest migration. That check reads the
scripts' ``revision`` lines and the database's version row, without importing alembic (whose
script directory imports every script: a third of a second of each command's start); alembic
is loaded when the database is not current, or the scripts are not one plain chain.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from .db import database_url, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: A migration script's identity lines (alembic's template writes them so).
_IDENTITY = re.compile(r"^(revision|down_revision|branch_labels|depends_on) = (.+)$", re.M)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (the newest by default)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    head = script_head()
    if head is not None and _version_rows(engine) == [head]:
        return True
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    return current_revision(engine) == head


def script_head() -> str | None:
    """The newest migration's revision, read from the scripts' identity lines; None when they
    do not make one plain chain (a branch, a merge, a line that is not a literal)."""
    revisions: set[str] = set()
    parents: set[str | None] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        try:
            found = {k: ast.literal_eval(v) for k, v in _IDENTITY.findall(path.read_text())}
        except (ValueError, SyntaxError):
            return None
        revision, parent = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        if found.get("branch_labels") or found.get("depends_on") or revision in revisions:
            return None
        revisions.add(revision)
        parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and len(parents) == len(revisions) else None


def _version_rows(engine: Engine) -> list[str] | None:
    """The revisions in the database's alembic_version table (None: no such table)."""
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
    except SQLAlchemyError:
        return None


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
