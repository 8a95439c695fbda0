"""A conversation being imported on SQLite (written in many short transactions) is marked with
the time its import last wrote, and stays invisible and inert until the import ends

Revision ID: 0009_conversation_importing
Revises: 0008_job_computing
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_conversation_importing"
down_revision = "0008_job_computing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("importing_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("importing_ms")
