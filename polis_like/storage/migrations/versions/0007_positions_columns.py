"""Positions are stored as fixed-width columns (not a compressed npz), so that one
participant's place is read without reading everyone's; on PostgreSQL they are stored
uncompressed out of line (so that a slice reads only its pages), and the results and states
tables are vacuumed after a few dead rows rather than a fifth of the table

Revision ID: 0007_positions_columns
Revises: 0006_abuse_guards
"""

import io

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0007_positions_columns"
down_revision = "0006_abuse_guards"
branch_labels = None
depends_on = None

#: Vacuum a table once this many rows are dead (the default waits for a fifth of the table:
#: with ten results kept per conversation, dozens of megabyte-sized dead results).
_VACUUM = (
    "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20, "
    "toast.autovacuum_vacuum_scale_factor = 0, toast.autovacuum_vacuum_threshold = 200"
)
_RESET = (
    "autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
    "toast.autovacuum_vacuum_scale_factor, toast.autovacuum_vacuum_threshold"
)


def _columns(npz: bytes) -> bytes:
    with np.load(io.BytesIO(npz)) as arrays:
        return b"".join(
            np.ascontiguousarray(arrays[name], dtype=kind).tobytes()
            for name, kind in (("x", "<f4"), ("y", "<f4"), ("group", "<i2"))
        )


def _npz(columns: bytes) -> bytes:
    n = len(columns) // 10
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x=np.frombuffer(columns, "<f4", n, 0),
        y=np.frombuffer(columns, "<f4", n, 4 * n),
        group=np.frombuffer(columns, "<i2", n, 8 * n),
    )
    return buffer.getvalue()


def _convert(change) -> None:
    bind = op.get_bind()
    results = sa.table(
        "math_results",
        sa.column("conversation_id", sa.Integer),
        sa.column("tick", sa.Integer),
        sa.column("positions", sa.LargeBinary),
    )
    keys = bind.execute(sa.select(results.c.conversation_id, results.c.tick)).all()
    for conversation_id, tick in keys:  # one at a time: each may be megabytes
        where = (results.c.conversation_id == conversation_id) & (results.c.tick == tick)
        blob = bind.execute(sa.select(results.c.positions).where(where)).scalar_one()
        bind.execute(results.update().where(where).values(positions=change(bytes(blob))))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE math_results ALTER COLUMN positions SET STORAGE EXTERNAL")
        op.execute(f"ALTER TABLE math_results SET ({_VACUUM})")
        op.execute(f"ALTER TABLE math_states SET ({_VACUUM})")
    _convert(_columns)


def downgrade() -> None:
    _convert(_npz)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE math_states RESET ({_RESET})")
        op.execute(f"ALTER TABLE math_results RESET ({_RESET})")
        op.execute("ALTER TABLE math_results ALTER COLUMN positions SET STORAGE EXTENDED")
