"""What the worker and the web rely on from storage, on SQLite and PostgreSQL: the lease
protocol, the results document, the consistent read of a conversation, and outages."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import bare_document
from sqlalchemy import create_engine, select
from test_worker import add_votes, new_conversation

from polis_like.conversation import VoteEvents
from polis_like.storage import conversations as store
from polis_like.storage import jobs, math_input, votes
from polis_like.storage._document import DocumentError
from polis_like.storage.models import JobRow, ResultRow
from polis_like.storage.results import VERSION, ResultsDocument, field_reference
from worker.runner import Worker

DOCS = Path(__file__).parent.parent / "docs"


def small_conversation(sessions, n_participants: int = 12, n_statements: int = 6) -> int:
    cid = new_conversation(sessions, n_statements)
    pids = [p for p in range(n_participants) for _ in range(n_statements)]
    sids = [s for _ in range(n_participants) for s in range(n_statements)]
    ballots = [1 if (p + s) % 3 else -1 for p, s in zip(pids, sids, strict=True)]
    add_votes(sessions, cid, VoteEvents(list(range(len(pids))), pids, sids, ballots))
    return cid


# -- the results document -----------------------------------------------------------------------


def test_a_published_document_reads_back_as_the_same_typed_document(engine, sessions):
    cid = small_conversation(sessions)
    assert Worker(engine).step() == [cid]
    with sessions() as session:
        text = session.scalar(select(ResultRow.result).where(ResultRow.conversation_id == cid))
    document = ResultsDocument.from_json(text)
    assert document.version == VERSION and document.tick == 1
    assert document.participation.participants == 12 and document.participation.votes == 72
    assert json.loads(document.to_json()) == json.loads(text)
    assert set(document.statements) == {str(s) for s in range(6)}


def test_a_document_of_another_shape_is_refused_naming_the_field():
    with pytest.raises(DocumentError, match=r"\$\.tick is missing"):
        ResultsDocument.from_json('{"version": 1}')
    document = json.loads(bare_document(1, 0).to_json())
    with pytest.raises(DocumentError, match=r"^\$\.groups must be a list$"):
        ResultsDocument.from_json(json.dumps({**document, "groups": 3}))
    with pytest.raises(DocumentError, match=r"^\$\.participation\.votes must be an integer$"):
        ResultsDocument.from_json(
            json.dumps(
                {**document, "participation": {**document["participation"], "votes": "many"}}
            )
        )


def test_the_api_docs_describe_every_field_of_the_results_document():
    text = (DOCS / "api.md").read_text()
    for path, kind, help_text in field_reference(ResultsDocument):
        assert f"| `{path}` | {kind} | {help_text} |" in text, path


def test_the_openapi_schema_of_results_names_every_field_a_real_result_has(
    app, client, engine, sessions
):
    from server.api.openapi import document as openapi

    cid = small_conversation(sessions)
    Worker(engine).step()
    result = client.get(f"/api/v1/conversations/{cid}/results").json
    schemas = openapi()["components"]["schemas"]
    top = schemas["ResultsDocument"]
    assert set(top["required"]) == set(result)
    assert set(schemas["Participation"]["required"]) == set(result["participation"])
    statement = next(iter(result["statements"].values()))
    assert set(schemas["StatementResult"]["required"]) == set(statement)


# -- the lease protocol -------------------------------------------------------------------------


def test_one_worker_holds_a_lease_until_it_expires_or_is_released(sessions):
    cid = new_conversation(sessions, 2)
    with sessions.begin() as session:
        assert jobs.acquire(session, cid, "first", 60.0)
        assert not jobs.acquire(session, cid, "second", 60.0)
        assert jobs.acquire(session, cid, "first", 60.0)  # its own: kept
        jobs.release(session, "first", cid)
        assert jobs.acquire(session, cid, "second", -1.0)  # taken, and already expired
        assert jobs.acquire(session, cid, "first", 60.0)
        assert jobs.renew(session, [cid], "second", 60.0) == set()


def test_a_success_clears_the_failures_and_their_back_off(sessions):
    cid = new_conversation(sessions, 2)
    with sessions.begin() as session:
        assert jobs.record_failure(session, cid, "boom") == 2.0
        assert jobs.record_failure(session, cid, "boom") == 4.0
        assert jobs.acquire(session, cid, "w", 60.0)
    with sessions.begin() as session:
        assert (
            jobs.publish(
                session,
                cid,
                "w",
                60.0,
                watermark=votes.Watermark(),
                revision=0,
                duration_ms=1.0,
                document=bare_document,
                positions=b"",
            )
            == 1
        )
    with sessions() as session:
        job = session.get(JobRow, cid)
        assert (job.failures, job.error) == (0, None)
    with sessions.begin() as session:
        assert jobs.record_failure(session, cid, "again") == 2.0  # the back-off starts over


def test_a_worker_that_lost_its_lease_publishes_nothing(sessions):
    cid = new_conversation(sessions, 2)
    with sessions.begin() as session:
        assert jobs.acquire(session, cid, "old", -1.0)  # expired at once
        assert jobs.acquire(session, cid, "new", 60.0)
    with sessions.begin() as session:
        assert (
            jobs.publish(
                session,
                cid,
                "old",
                60.0,
                watermark=votes.Watermark(5, 0),
                revision=0,
                duration_ms=1.0,
                document=bare_document,
                positions=b"",
            )
            is None
        )
    with sessions() as session:
        assert session.get(JobRow, cid).tick == 0
        assert (
            session.scalar(select(ResultRow.tick).where(ResultRow.conversation_id == cid)) is None
        )


# -- reading consistently -----------------------------------------------------------------------


def test_a_participant_joining_while_the_worker_reads_does_not_fail_the_update(
    engine, sessions, monkeypatch
):
    cid = small_conversation(sessions)
    real_read = math_input.read_new_votes

    def read_after_someone_joins(session, conversation_id, after):
        # Between the worker's read of the conversation and its read of the votes, a new
        # participant arrives and votes (another transaction, committed).
        with sessions() as other:
            who = votes.Who(visitor="late-comer")
            pid, _ = votes.join(other, cid, who)
            votes.cast_vote(other, cid, pid, 0, 1)
            other.commit()
        return real_read(session, conversation_id, after)

    monkeypatch.setattr(math_input, "read_new_votes", read_after_someone_joins)
    assert Worker(engine).step() == [cid]
    with sessions() as session:
        job = session.get(JobRow, cid)
        document = ResultsDocument.from_json(
            session.scalar(select(ResultRow.result).where(ResultRow.conversation_id == cid))
        )
    assert job.failures == 0 and job.error is None
    assert document.n_participants == 13 and document.participation.votes == 73


def test_the_latest_vote_rule_is_the_same_in_the_table_and_the_math(sessions):
    """Two votes in one millisecond: the larger counts, whichever was written last."""
    cid = new_conversation(sessions, 1)
    with sessions() as session:
        pid, _ = votes.join(session, cid, votes.Who(visitor="v"))
        for vote in (1, -1):
            votes.cast_vote(session, cid, pid, 0, vote, at=1_000)
        session.commit()
        read = votes.read_new_votes(session, cid, votes.Watermark())
        assert votes.latest_vote(session, cid, pid, 0) == 1
    assert read.events.vote.tolist() == [1] and read.n_read == 2


def test_votes_of_one_conversation_do_not_wait_for_each_other(sessions):
    # Two participants' vote transactions at once: the second commits while the first is
    # still open (no lock is held across a vote).
    cid = new_conversation(sessions, 2)
    with sessions() as first, sessions() as second:
        a, _ = votes.join(first, cid, votes.Who(visitor="a"))
        first.commit()
        b, _ = votes.join(second, cid, votes.Who(visitor="b"))
        second.commit()
        votes.cast_vote(first, cid, a, 0, 1)  # open, not committed
        if first.get_bind().dialect.name == "sqlite":
            first.commit()  # one writer: SQLite serialises writes by design
        finished = threading.Event()

        def vote_b():
            votes.cast_vote(second, cid, b, 1, -1)
            second.commit()
            finished.set()

        thread = threading.Thread(target=vote_b)
        thread.start()
        thread.join(10)
        assert finished.is_set()
        first.commit()


def test_a_vote_that_commits_after_a_later_one_is_read_once_and_not_skipped(sessions):
    # PostgreSQL gives ids when events are inserted, and transactions commit in any order: the
    # vote with the smaller id can commit last. The worker's reads must neither skip it nor
    # read anything twice.
    cid = new_conversation(sessions, 3)
    with sessions() as slow, sessions() as fast, sessions() as worker:
        a, _ = votes.join(slow, cid, votes.Who(visitor="slow"))
        slow.commit()
        b, _ = votes.join(fast, cid, votes.Who(visitor="fast"))
        fast.commit()
        postgres = slow.get_bind().dialect.name == "postgresql"
        votes.cast_vote(slow, cid, a, 0, 1)  # inserted first: the smaller id
        if not postgres:
            slow.commit()  # SQLite has one writer: no interleaving to test
        votes.cast_vote(fast, cid, b, 1, -1)
        fast.commit()
        first = votes.read_new_votes(worker, cid, votes.Watermark())
        worker.commit()
        slow.commit()  # the smaller id commits last
        second = votes.read_new_votes(worker, cid, first.watermark)
        worker.commit()
        third = votes.read_new_votes(worker, cid, second.watermark)
    read = [
        (int(p), int(s))
        for r in (first, second, third)
        for p, s in zip(r.events.participant, r.events.statement, strict=True)
    ]
    assert sorted(read) == [(a, 0), (b, 1)]  # each vote once
    if postgres:
        assert [r.n_read for r in (first, second, third)] == [0, 2, 0]  # held back, then both
    assert third.n_read == 0


def test_visible_statements_follow_the_moderation_mode(sessions):
    cid = new_conversation(sessions, 0)
    with sessions() as session:
        conversation = store.get_conversation(session, cid)
        for text, status in (("accepted", 1), ("pending", 0), ("rejected", -1)):
            store.add_statement(session, conversation, text, author_pid=None, status=status)
        session.commit()
        shown = [t for _, t, _ in store.visible_statements(session, cid, "open")]
        strict = [t for _, t, _ in store.visible_statements(session, cid, "strict")]
    assert shown == ["accepted", "pending"] and strict == ["accepted"]


# -- outages ------------------------------------------------------------------------------------


def test_the_worker_waits_out_an_unreachable_database_and_carries_on(
    tmp_path, sqlite_template, caplog
):
    caplog.set_level(logging.INFO, "polis_like.worker")
    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'polis-like.db'}"
    engine = create_engine(url)  # the folder does not exist: every connection fails
    worker = Worker(engine, poll_s=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        time.sleep(0.5)
        assert thread.is_alive()
        folder.mkdir()
        shutil.copy(sqlite_template, folder / "polis-like.db")
        from polis_like.storage.db import make_engine, session_factory

        other = make_engine(url)
        cid = small_conversation(session_factory(other))
        deadline = time.monotonic() + 30
        tick = 0
        while time.monotonic() < deadline and not tick:
            with session_factory(other)() as session:
                tick = jobs.current_tick(session, cid)
            time.sleep(0.1)
        assert tick == 1
    finally:
        worker.stop()
        thread.join(30)
        engine.dispose()
    assert not thread.is_alive()
    warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not once per try
    assert "answers again" in caplog.text
    other.dispose()


def test_the_summary_of_a_result_is_what_its_document_says(sessions):
    from polis_like.storage.results import read_document, read_summary, to_plain

    cid = new_conversation(sessions, 2)
    with sessions.begin() as session:
        assert jobs.acquire(session, cid, "w", 60.0)
        tick = jobs.publish(
            session,
            cid,
            "w",
            60.0,
            watermark=votes.Watermark(),
            revision=0,
            duration_ms=1.0,
            document=bare_document,
            positions=b"",
        )
    with sessions() as session:
        document = read_document(session, cid, tick)
        assert read_summary(session, cid, tick) == {
            "computed_ms": document.computed_ms,
            "k": document.k,
            "participation": to_plain(document.participation),
        }
        assert read_summary(session, cid, tick + 1) is None


def _vote_often(url: str, cid: int, pid: int, start, n: int, failures) -> None:
    """A process voting ``n`` times on a SQLite file that gives no busy wait at all."""
    from polis_like.storage.db import make_engine, session_factory

    engine = make_engine(url, sqlite_busy_s=0)
    sessions = session_factory(engine)
    start.wait()
    for i in range(n):
        with sessions() as session:
            try:
                votes.record_vote(session, cid, pid, i % 2, 1 - i % 3)
            except Exception as error:  # counted: the test expects none
                failures.put(repr(error))
    engine.dispose()


def test_sqlite_writers_of_several_processes_take_turns(sqlite_template, tmp_path):
    """The web server's processes write one SQLite file: they take turns on its turn file
    rather than meet SQLite's lock (here with no busy wait, so a meeting would fail a vote)."""
    import multiprocessing

    from polis_like.storage.db import make_engine, session_factory

    path = tmp_path / "polis-like.db"
    shutil.copy(sqlite_template, path)
    database_url = f"sqlite:///{path}"
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    cid = new_conversation(sessions, 2)
    with sessions() as session:
        pids = [votes.join(session, cid, votes.Who(visitor=f"p{n}"))[0] for n in range(3)]
    context = multiprocessing.get_context("spawn")
    start, failures = context.Event(), context.Queue()
    processes = [
        context.Process(target=_vote_often, args=(database_url, cid, pid, start, 150, failures))
        for pid in pids
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert errors == []
    with sessions() as session:
        stored = votes.read_new_votes(session, cid, votes.Watermark())
    engine.dispose()
    assert stored.n_read == 450


def test_the_worker_reads_every_kind_of_vote_and_the_largest_ids(sessions):
    """The events are read in bulk, packed: each vote value, and pids and sids too large to
    pack (the read then takes them one by one), come back as they were cast, once."""
    cid = new_conversation(sessions, 3)
    cast = [(0, 0, -1), (1, 2, 0), (2, 1, 1), (2**31 - 1, 2**31 - 2, -1)]
    read: list[tuple[int, int, int]] = []
    watermark = votes.Watermark()
    with sessions() as session:
        for done in (3, 4):
            for pid, sid, vote in cast[len(read) : done]:
                votes.cast_vote(session, cid, pid, sid, vote, at=1_000 + pid)
            session.commit()
            # on PostgreSQL a transaction elsewhere on the server can hold the votes back a while
            deadline = time.monotonic() + 120
            while len(read) < done and time.monotonic() < deadline:
                new = votes.read_new_votes(session, cid, watermark)
                session.commit()
                watermark = new.watermark
                e = new.events
                read += zip(
                    e.participant.tolist(), e.statement.tolist(), e.vote.tolist(), strict=True
                )
                time.sleep(0.1)
            assert sorted(read) == cast[:done]
    with sessions() as session:
        assert votes.read_new_votes(session, cid, watermark).n_read == 0


def test_a_first_read_in_many_id_ranges_reads_each_event_once(sessions, monkeypatch):
    """A conversation's first read on PostgreSQL comes a range of ids a query (as arrays):
    where the ranges end, and another conversation's events between, change nothing."""
    cid, other = new_conversation(sessions, 4), new_conversation(sessions, 4)
    cast = []
    for k in range(60):
        pid, sid, vote = k % 7, k % 4, k % 3 - 1
        cast.append((pid, sid, vote, 5_000 + k))
        add_votes(sessions, cid, VoteEvents([5_000 + k], [pid], [sid], [vote]))
        if k % 5 == 0:  # a gap in this conversation's ids
            add_votes(sessions, other, VoteEvents([k], [0], [0], [1]))
    monkeypatch.setattr(votes, "AGGREGATED_IDS", 1)
    # on PostgreSQL a transaction elsewhere on the server can hold the votes back a while
    deadline = time.monotonic() + 120
    while True:
        with sessions() as session:
            first = votes.read_new_votes(session, cid, votes.Watermark())
        if first.n_read == len(cast) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert first.n_read == len(cast)
    e = first.events
    read = zip(e.participant.tolist(), e.statement.tolist(), e.vote.tolist(), strict=True)
    latest = {(p, s): v for p, s, v, _ in cast}  # each (pid, sid) once: its latest vote
    assert sorted(read) == sorted((p, s, v) for (p, s), v in latest.items())
    with sessions() as session:
        assert votes.read_new_votes(session, cid, first.watermark).n_read == 0
