"""Participation history: the counts of every published result, for the dashboard's chart

Revision ID: 0002_participation_history
Revises: 0001
Create Date: 2026-11-30 13:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_participation_history"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "participation_history",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("tick", sa.Integer(), nullable=False),
        sa.Column("computed_ms", sa.BigInteger(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_participation_history_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "tick", name=op.f("pk_participation_history")),
    )


def downgrade() -> None:
    op.drop_table("participation_history")
