"""Vote events carry their transaction id on PostgreSQL, so votes need no lock to keep order

The worker reads, on PostgreSQL, the vote events whose transaction is older than every
transaction still running (all of them final), instead of the events past an id; the jobs and
saved states keep that boundary (``read_tx``). SQLite has one writer, so ids keep order there
and the column is not added.

Revision ID: 0005_vote_transactions
Revises: 0004_account_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_vote_transactions"
down_revision = "0004_account_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("math_jobs", "math_states"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("read_tx", sa.BigInteger(), nullable=False, server_default="0")
            )
    if op.get_bind().dialect.name == "postgresql":
        # Existing events get the migration's transaction id; a worker that had read them
        # (read_tx 0) reads them again once, from a state it then rebuilds (see below).
        op.add_column(
            "vote_events",
            sa.Column(
                "tx",
                sa.BigInteger(),
                nullable=False,
                server_default=sa.text("(pg_current_xact_id()::text::bigint)"),
            ),
        )
        op.create_index("ix_vote_events_conversation_tx", "vote_events", ["conversation_id", "tx"])
        # Every saved state and published mark stood for "events up to an id": start the marks
        # over, so that each conversation is recomputed once from all its events.
        op.execute("DELETE FROM math_states")
        op.execute("UPDATE math_jobs SET high_water = 0, read_tx = 0")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_vote_events_conversation_tx", table_name="vote_events")
        op.drop_column("vote_events", "tx")
    for table in ("math_states", "math_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("read_tx")
