"""Jobs record when their lease holder started computing them, so that another worker can take
the other conversations of a worker long busy with one

Revision ID: 0008_job_computing
Revises: 0007_positions_columns
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_job_computing"
down_revision = "0007_positions_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("math_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("computing_since", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("math_jobs", schema=None) as batch_op:
        batch_op.drop_column("computing_since")
