"""Pinned results: a tick shown in a report is kept when newer results prune the old ones

Revision ID: 0003_pinned_results
Revises: 0002_participation_history
Create Date: 2026-11-30 13:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_pinned_results"
down_revision = "0002_participation_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("math_results", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("math_results", schema=None) as batch_op:
        batch_op.drop_column("pinned")
