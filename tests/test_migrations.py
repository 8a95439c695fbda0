"""Migrations that change stored data: what was stored before reads the same after, both ways,
on both databases."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import unicodedata

import numpy as np
from sqlalchemy import insert, select, text

from polis_like.storage import results
from polis_like.storage.conversations import create_conversation, text_key
from polis_like.storage.migrate import downgrade, upgrade
from polis_like.storage.models import JobRow, ResultRow, StatementRow


def _old_key(statement: str) -> str:
    """The duplicate key before migration 0006 (format characters counted)."""
    folded = " ".join(unicodedata.normalize("NFKC", statement).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()


def _npz(x, y, group) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=y, group=group)
    return buffer.getvalue()


def test_stored_positions_become_columns_and_back(database_url, sessions):
    with sessions() as session:
        cid = create_conversation(session, {"topic": "Buses"}).id
        session.commit()
    x = np.array([0.5, np.nan, -1.25], dtype=np.float32)
    y = np.array([2.0, np.nan, 0.75], dtype=np.float32)
    group = np.array([1, -1, -1], dtype=np.int16)
    try:
        downgrade(database_url, "0006_abuse_guards")
        with sessions() as session:
            session.execute(
                insert(ResultRow.__table__).values(
                    conversation_id=cid,
                    tick=1,
                    high_water=0,
                    computed_ms=0,
                    duration_ms=1.0,
                    result="{}",
                    positions=_npz(x, y, group),
                    pinned=False,
                )
            )
            session.commit()
        upgrade(database_url)
        with sessions() as session:
            assert results.position_of(session, cid, 1, 0) == (0.5, 2.0, 1)
            assert results.position_of(session, cid, 1, 1) is None  # not placed
            assert results.position_of(session, cid, 1, 2) == (-1.25, 0.75, None)
            assert results.position_of(session, cid, 1, 3) is None  # past the last
            assert results.position_of(session, cid, 2, 0) is None  # no such result
            stored = results.positions_bytes_at(session, cid, 1)
        assert len(stored) == 3 * results.POSITION_BYTES
        downgrade(database_url, "0006_abuse_guards")
        with sessions() as session:
            blob = session.scalar(select(ResultRow.positions).where(ResultRow.tick == 1))
        with np.load(io.BytesIO(blob)) as arrays:
            assert np.array_equal(arrays["x"], x, equal_nan=True)
            assert np.array_equal(arrays["group"], group)
    finally:
        upgrade(database_url)  # the database is shared by the tests that follow


def test_duplicate_keys_leave_out_format_characters_unless_two_statements_would_clash(
    database_url, sessions
):
    with sessions() as session:
        cid = create_conversation(session, {"topic": "Trams"}).id
        session.commit()
    texts = {0: "Tram\u00adlines", 1: "Bus lanes", 2: "Bus\u200b lanes"}
    try:
        downgrade(database_url, "0005_vote_transactions")
        with sessions() as session:
            for sid, statement in texts.items():
                session.execute(
                    text(
                        "INSERT INTO statements (conversation_id, sid, text, text_key, "
                        "author_pid, status, is_seed, is_meta, created_ms) "
                        "VALUES (:cid, :sid, :text, :key, NULL, 1, false, false, 0)"
                    ),
                    {"cid": cid, "sid": sid, "text": statement, "key": _old_key(statement)},
                )
            session.commit()
        upgrade(database_url)
        with sessions() as session:
            keys = dict(
                session.execute(
                    select(StatementRow.sid, StatementRow.text_key).where(
                        StatementRow.conversation_id == cid
                    )
                ).all()
            )
            assert session.scalar(select(JobRow.tick).where(JobRow.conversation_id == cid)) == 0
        assert keys[0] == text_key("Tramlines")  # today's key
        assert keys[1] == text_key("Bus lanes")
        # Its new key is taken by statement 1: it keeps the old one, and both stay.
        assert keys[2] == _old_key(texts[2])
    finally:
        upgrade(database_url)


def test_the_start_check_knows_the_newest_migration_without_alembic(database_url, engine):
    from alembic.script import ScriptDirectory

    from polis_like.storage.migrate import alembic_config, is_current, script_head

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert script_head() == head
    assert is_current(engine)
    try:
        downgrade(database_url, "0008_job_computing")
        assert not is_current(engine)  # one migration behind: the command upgrades
    finally:
        upgrade(database_url)
    assert is_current(engine)


def test_an_empty_database_is_not_current_and_gets_migrated(tmp_path):
    from polis_like.storage.db import make_engine
    from polis_like.storage.migrate import current_revision, ensure_current, is_current, script_head

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    empty = make_engine(url)
    try:
        assert not is_current(empty)  # no alembic_version table yet
    finally:
        empty.dispose()
    migrated = ensure_current(url)
    try:
        assert current_revision(migrated) == script_head()
    finally:
        migrated.dispose()


def test_a_command_on_a_current_database_does_not_load_alembic(database_url):
    # alembic's script directory imports every migration: a third of a second of each start
    program = (
        "import sys\n"
        "from polis_like.storage.migrate import ensure_current\n"
        f"ensure_current({database_url!r}).dispose()\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
