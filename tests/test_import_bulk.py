"""Bulk import: chunked writes give the same conversation, a failure half way leaves nothing,
and on SQLite other votes go on while an import runs (it is invisible until done).

Every test runs on SQLite and on PostgreSQL unless it says otherwise. The chunks are made small
so that the real fixtures span many of them.
"""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest
from conftest import FIXTURES
from sqlalchemy import text, update
from test_transfer import SMALL, assert_same_files, count, reference

from polis_like.errors import NotFound
from polis_like.storage import jobs, models, transfer
from polis_like.storage.conversations import (
    get_conversation,
    list_conversations,
    participant_view,
)
from polis_like.storage.transfer import import_conversation, import_export, write_conversation
from polis_like.storage.votes import Watermark, read_new_votes, record_vote

TABLES = (
    models.ConversationRow,
    models.ParticipantRow,
    models.StatementRow,
    models.VoteEventRow,
    models.LatestVoteRow,
    models.JobRow,
)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 50 rows (SQLite transactions and PostgreSQL COPY writes), PostgreSQL
    transactions of 100, no pauses."""
    monkeypatch.setattr(transfer, "CHUNK", 50)
    monkeypatch.setattr(transfer, "PG_TRANSACTION_ROWS", 100)
    monkeypatch.setattr(transfer, "SQLITE_FIRST_ROWS", 50)
    monkeypatch.setattr(transfer, "SQLITE_MAX_ROWS", 50)
    monkeypatch.setattr(transfer, "SQLITE_PAUSE_S", 0.0)
    monkeypatch.setattr(transfer, "SQLITE_SHORT_PAUSE_S", 0.0)
    monkeypatch.setattr(transfer, "DISCARD_ROWS", 70)


def rows_of(sessions, conversation_id: int) -> dict[str, int]:
    """How many rows of each table belong to the conversation."""
    from sqlalchemy import func, select

    with sessions() as session:
        return {
            model.__tablename__: session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.conversation_id == conversation_id)
            )
            for model in TABLES[1:]
        }


def test_an_import_in_many_chunks_exports_the_same_files(
    sessions, small_chunks, load_conversation, tmp_path
):
    expected = reference(load_conversation(SMALL), tmp_path / "expected")
    conversation_id = import_export(sessions, FIXTURES / SMALL)
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path / "actual")
    assert_same_files(expected, tmp_path / "actual")
    assert len(load_conversation(SMALL).votes) > 10 * 50  # many chunks


@pytest.mark.parametrize("failing_table", ["vote_events", "latest_votes"])
def test_a_chunk_that_fails_half_way_leaves_nothing_behind(
    sessions, small_chunks, load_conversation, monkeypatch, failing_table
):
    """On PostgreSQL the latest votes are written by a thread of their own: its failure stops
    the import all the same."""
    chunk = transfer._chunk

    def failing(table, start, stop):
        if table.name == failing_table and start >= 200:
            raise OSError(28, "No space left on device")
        return chunk(table, start, stop)

    monkeypatch.setattr(transfer, "_chunk", failing)
    with pytest.raises(OSError, match="No space left"):
        import_conversation(sessions, load_conversation(SMALL))
    for model in TABLES:
        assert count(sessions, model) == 0, model.__tablename__


def test_a_bad_row_half_way_leaves_nothing_behind(
    sessions, small_chunks, load_conversation, monkeypatch
):
    """The database refuses a row of a later chunk (a vote of 5): the earlier chunks go too."""
    chunk = transfer._chunk

    def bad(table, start, stop):
        columns = chunk(table, start, stop)
        if table.name == "vote_events" and start >= 200:
            columns[2] = np.full(stop - start, 5, np.int8)
        return columns

    monkeypatch.setattr(transfer, "_chunk", bad)
    with pytest.raises(Exception, match=r"(?i)check"):
        import_conversation(sessions, load_conversation(SMALL))
    for model in TABLES:
        assert count(sessions, model) == 0, model.__tablename__


def read_all_votes(sessions, conversation_id: int, expected: int) -> int:
    """How many vote events the worker's read of all of the conversation's returns, once it
    returns ``expected`` or after a minute (on PostgreSQL a transaction elsewhere on a shared
    server can hold them back a while)."""
    deadline = time.monotonic() + 60
    while True:
        with sessions() as session:
            read = read_new_votes(session, conversation_id, Watermark(0, 0)).n_read
        if read >= expected or time.monotonic() > deadline:
            return read
        time.sleep(0.1)


def test_a_vote_commits_and_is_read_while_an_import_is_under_way(
    sessions, small_chunks, load_conversation, monkeypatch
):
    """Between two transactions of an import, another session votes on another conversation
    and the worker reads that vote; the half-imported conversation's committed rows are there,
    but it is nowhere to be seen, and the worker leaves it alone.

    On PostgreSQL the worker reads only the votes of transactions older than every running
    one: an import in one transaction would hold the vote back until the import ends."""
    other = import_export(sessions, FIXTURES / SMALL)
    with sessions() as session:
        pid, sid = session.execute(
            models.LatestVoteRow.__table__.select()
            .with_only_columns(models.LatestVoteRow.pid, models.LatestVoteRow.sid)
            .where(models.LatestVoteRow.conversation_id == other)
            .limit(1)
        ).one()
        jobs_before = jobs.dirty(session)
    events_before = rows_of(sessions, other)["vote_events"]
    assert read_all_votes(sessions, other, events_before) == events_before
    seen: list[dict] = []

    def between(conversation_id: int) -> None:
        if seen:
            return
        rows = rows_of(sessions, conversation_id)
        with sessions() as session:
            record_vote(session, other, pid, sid, 1)
        read = read_all_votes(sessions, other, events_before + 1)
        with sessions() as session:
            with pytest.raises(NotFound):
                get_conversation(session, conversation_id)
            with pytest.raises(NotFound):
                participant_view(session, conversation_id)
            listed = [c.id for c in list_conversations(session, offset=0, limit=100)]
            seen.append(
                {
                    "id": conversation_id,
                    "rows": rows,
                    "read": read,
                    "listed": listed,
                    "dirty": jobs.dirty(session),
                }
            )

    monkeypatch.setattr(transfer, "_between_chunks", between)
    imported = import_conversation(sessions, load_conversation(SMALL))
    (during,) = seen
    assert during["id"] == imported
    assert during["rows"]["participants"] > 0  # the import had written, and committed, rows
    assert during["read"] == events_before + 1  # the worker read the vote during the import
    assert imported not in during["listed"] and other in during["listed"]
    assert imported not in during["dirty"]
    assert set(during["dirty"]) == set(jobs_before) | {other}
    with sessions() as session:
        vote = session.get(models.LatestVoteRow, (other, pid, sid))
        assert vote is not None and vote.vote == 1
        assert get_conversation(session, imported).importing_ms is None
        assert imported in jobs.dirty(session)


def test_the_next_import_clears_a_killed_one(
    sessions, small_chunks, load_conversation, monkeypatch
):
    chunk = transfer._chunk

    def killed(table, start, stop):
        if table.name == "vote_events" and start >= 200:
            raise KeyboardInterrupt
        return chunk(table, start, stop)

    # A "kill": the import stops half way without deleting what it wrote.
    with monkeypatch.context() as patched:
        patched.setattr(transfer, "_discard", lambda sessions, cid: None)
        patched.setattr(transfer, "_chunk", killed)
        with pytest.raises(KeyboardInterrupt):
            import_conversation(sessions, load_conversation(SMALL))
    (dead,) = [c for c in range(1, 10) if rows_of(sessions, c)["vote_events"]]
    with sessions() as session:
        assert list_conversations(session, offset=0, limit=10) == []

    # Still fresh: it may be alive, so the next import leaves it.
    live = import_export(sessions, FIXTURES / SMALL)
    assert rows_of(sessions, dead)["vote_events"] > 0
    with sessions() as session:
        session.execute(
            update(models.ConversationRow)
            .where(models.ConversationRow.id == dead)
            .values(importing_ms=1)
        )
        session.commit()
    again = import_export(sessions, FIXTURES / SMALL)
    assert set(rows_of(sessions, dead).values()) == {0}
    assert count(sessions, models.ConversationRow) == 2
    assert rows_of(sessions, again) == rows_of(sessions, live)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_role_that_may_not_skip_foreign_key_checks_imports_all_the_same(
    database_url, small_chunks, load_conversation, tmp_path
):
    """Only a superuser, or a role granted it, may turn off its foreign-key checks for an
    import's transactions; any other role imports with them."""
    import psycopg

    from polis_like.storage.db import make_engine, session_factory

    role = f"polis_like_test_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} NOLOGIN")
        admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    engine = make_engine(database_url, connect_args={"options": f"-c role={role}"})
    try:
        sessions = session_factory(engine)
        assert not transfer._may_skip_fk_checks(sessions)
        expected = reference(load_conversation(SMALL), tmp_path / "expected")
        conversation_id = import_export(sessions, FIXTURES / SMALL)
        with sessions() as session:
            write_conversation(session, conversation_id, tmp_path / "actual")
        assert_same_files(expected, tmp_path / "actual")
    finally:
        engine.dispose()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_an_import_pauses_long_when_others_write(sessions, monkeypatch):
    """Short pauses between the transactions of an import while nobody else writes; a long
    one after a writer had to wait for the turn, after someone wrote during a pause (writers
    that wait in SQLite's busy handler), and at least every SQLITE_PAUSE_EVERY_S."""
    from polis_like.storage import db

    monkeypatch.setattr(transfer, "SQLITE_PAUSE_EVERY_S", 3600.0)
    slept: list[float] = []
    write_now = [False]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if write_now[0]:  # another connection writes during this pause
            with sessions() as other:
                other.execute(text("INSERT INTO scratch VALUES (1)"))
                other.commit()

    short, long = transfer.SQLITE_SHORT_PAUSE_S, transfer.SQLITE_PAUSE_S
    with sessions() as session:
        session.execute(text("CREATE TABLE scratch (x)"))
        session.commit()
        pause = transfer._Pauses(session, sleep)
        pause()
        write_now[0] = True
        pause()
        write_now[0] = False
        pause()
        pause()
        time.sleep(0.02)  # file times move in ticks of a few milliseconds
        db._announce_wait(db._turn_file(session.get_bind().engine.url.database))
        pause()
        pause()
        monkeypatch.setattr(transfer, "SQLITE_PAUSE_EVERY_S", 0.0)
        pause()
    assert slept == [short, short, long, short, long, short, long]
