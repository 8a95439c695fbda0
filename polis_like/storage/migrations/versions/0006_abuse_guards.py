"""Guards against abuse: disabled accounts, invite codes, moderators given conversations,
participants' origins (so that a ban holds against a cleared cookie), and duplicate keys that
ignore invisible format characters

Revision ID: 0006_abuse_guards
Revises: 0005_vote_transactions
"""

import sqlalchemy as sa
from alembic import op

from polis_like.storage.conversations import text_key

revision = "0006_abuse_guards"
down_revision = "0005_vote_transactions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invite_code", sa.String(length=64), nullable=True))
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_participants_conversation_banned", ["conversation_id", "banned"], unique=False
        )
    op.create_table(
        "conversation_moderators",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_conversation_moderators_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_moderators_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "conversation_id", "account_id", name=op.f("pk_conversation_moderators")
        ),
    )
    op.create_index(
        op.f("ix_conversation_moderators_account_id"),
        "conversation_moderators",
        ["account_id"],
        unique=False,
    )
    _rekey_statements()


def _rekey_statements() -> None:
    """Give statements the duplicate key of today's rule, which also ignores invisible format
    characters. Only a text with such a character can change key; when its new key is taken
    by another statement of the conversation (two statements that differed only by them),
    it keeps the old one: both stay, and a third saying the same is refused."""
    bind = op.get_bind()
    statements = sa.table(
        "statements",
        sa.column("id", sa.Integer),
        sa.column("conversation_id", sa.Integer),
        sa.column("text", sa.Text),
        sa.column("text_key", sa.String),
    )
    rows = bind.execute(
        sa.select(
            statements.c.id, statements.c.conversation_id, statements.c.text, statements.c.text_key
        )
    ).all()
    taken = {(row.conversation_id, row.text_key) for row in rows}
    for row in rows:
        key = text_key(row.text)
        if key == row.text_key or (row.conversation_id, key) in taken:
            continue
        bind.execute(statements.update().where(statements.c.id == row.id).values(text_key=key))
        taken.discard((row.conversation_id, row.text_key))
        taken.add((row.conversation_id, key))


def downgrade() -> None:
    op.drop_index(
        op.f("ix_conversation_moderators_account_id"), table_name="conversation_moderators"
    )
    op.drop_table("conversation_moderators")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index("ix_participants_conversation_banned")
        batch_op.drop_column("origin")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("invite_code")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("disabled")
