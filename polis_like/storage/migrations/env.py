"""Alembic environment of polis-like (configured from code: see polis_like.storage.migrate)."""

from alembic import context

from polis_like.storage.db import make_engine
from polis_like.storage.models import Base

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    engine = make_engine(url) if url.startswith("sqlite") else make_engine(url, pool_size=1)
    with engine.connect() as connection:
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
