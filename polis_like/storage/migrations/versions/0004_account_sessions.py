"""Accounts carry a session epoch, so that sign-out and a new password end old session cookies

Revision ID: 0004_account_sessions
Revises: 0003_pinned_results
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_account_sessions"
down_revision = "0003_pinned_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
