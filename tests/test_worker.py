"""The math worker on SQLite and PostgreSQL: incremental results equal the engine's, restarts
resume, two workers never compute one conversation at once, and one failure stops nothing else."""

from __future__ import annotations

import itertools
import json
import threading
import time

import numpy as np
import pytest
from sqlalchemy import insert, select

from polis_like.conversation import VoteEvents
from polis_like.math import compute, update
from polis_like.math.matrix import latest_votes
from polis_like.storage import conversations as store
from polis_like.storage.models import (
    JobRow,
    ParticipantRow,
    ResultRow,
    VoteEventRow,
)
from worker.runner import Worker


def new_conversation(sessions, n_statements: int, topic: str = "t") -> int:
    with sessions() as session:
        conversation = store.create_conversation(session, {"topic": topic})
        for sid in range(n_statements):
            store.add_statement(
                session, conversation, f"statement {sid}", author_pid=None, seed=True
            )
        session.commit()
        return conversation.id


def add_votes(sessions, cid: int, events: VoteEvents) -> None:
    """Store vote events as the API would (participants appear on their first vote)."""
    with sessions() as session:
        conversation = store.get_conversation(session, cid)
        known = conversation.next_pid
        top = int(events.participant.max()) + 1 if len(events) else 0
        if top > known:
            session.execute(
                insert(ParticipantRow),
                [
                    {
                        "conversation_id": cid,
                        "pid": p,
                        "visitor": f"v{p}",
                        "xid": None,
                        "banned": False,
                        "created_ms": 0,
                    }
                    for p in range(known, top)
                ],
            )
            conversation.next_pid = top
        rows = [
            {
                "conversation_id": cid,
                "pid": int(p),
                "sid": int(s),
                "vote": int(v),
                "created_ms": int(t),
            }
            for t, p, s, v in zip(
                events.timestamp_ms, events.participant, events.statement, events.vote, strict=True
            )
        ]
        session.execute(insert(VoteEventRow), rows)
        session.commit()


def latest_result(sessions, cid: int) -> dict:
    with sessions() as session:
        text = session.scalar(
            select(ResultRow.result)
            .where(ResultRow.conversation_id == cid)
            .order_by(ResultRow.tick.desc())
            .limit(1)
        )
    return json.loads(text)


def essentials(document: dict) -> dict:
    """What the engine decides: groups, their members' count, reps, consensus, priorities."""
    return {
        "k": document["k"],
        "groups": [(g["size"], g["representative"]) for g in document["groups"]],
        "consensus": document["consensus"],
        "priority": {sid: s["priority"] for sid, s in document["statements"].items()},
        "xy": {sid: (s["x"], s["y"]) for sid, s in document["statements"].items()},
    }


@pytest.fixture(scope="module")
def vtaiwan_batches():
    from polis_like.io import read_export
    from tests.conftest import FIXTURES

    conversation = read_export(FIXTURES / "vtaiwan.uberx")
    events = conversation.votes.take(conversation.votes.time_order())
    cuts = np.linspace(0, len(events), 5).astype(int)
    return conversation, [events.take(slice(a, b)) for a, b in itertools.pairwise(cuts)]


def test_incremental_results_equal_the_engine_and_a_full_rebuild(sessions, engine, vtaiwan_batches):
    conversation, batches = vtaiwan_batches
    n_statements = len(conversation.statements)
    cid = new_conversation(sessions, n_statements)
    worker = Worker(engine)
    direct_state = None
    for batch in batches:
        add_votes(sessions, cid, batch)
        assert worker.step() == [cid]
        if direct_state is None:
            direct, direct_state = compute(
                batch, n_participants=len(conversation.participant_ids), n_statements=n_statements
            )
        else:
            direct, direct_state = update(
                direct_state, batch, n_participants=len(conversation.participant_ids)
            )
    published = latest_result(sessions, cid)
    assert published["tick"] == len(batches)
    assert published["participation"]["votes"] == sum(len(b) for b in batches)
    assert published["k"] == direct.k
    assert [g["size"] for g in published["groups"]] == [
        int((direct.group == g).sum()) for g in range(direct.k)
    ]
    assert {int(s): v["priority"] for s, v in published["statements"].items()} == pytest.approx(
        {s: float(p) for s, p in enumerate(direct.priority)}, rel=1e-5
    )
    # the worker's matrix is exactly the latest votes of every stored event
    everything = VoteEvents(
        *(
            np.concatenate([getattr(b, f) for b in batches])
            for f in ("timestamp_ms", "participant", "statement", "vote")
        )
    )
    memory = worker.memory[cid]
    rebuilt = latest_votes(everything, *memory.state.shape)
    assert (memory.state.codes != rebuilt).nnz == 0


def test_a_restarted_worker_resumes_from_the_saved_state(sessions, engine, vtaiwan_batches):
    conversation, batches = vtaiwan_batches
    cid = new_conversation(sessions, len(conversation.statements))
    steady = Worker(engine, name="steady")
    for batch in batches[:2]:
        add_votes(sessions, cid, batch)
        steady.step()
    steady.release_all()  # a clean shutdown saves the state and frees the lease
    restarted = Worker(engine, name="restarted")
    for batch in batches[2:]:
        add_votes(sessions, cid, batch)
        assert restarted.step() == [cid]
    after_restart = latest_result(sessions, cid)
    assert after_restart["tick"] == len(batches)

    other = new_conversation(sessions, len(conversation.statements), topic="uninterrupted")
    single = Worker(engine, name="single")
    for batch in batches:
        add_votes(sessions, other, batch)
        single.step()
    uninterrupted = latest_result(sessions, other)
    assert essentials(after_restart) == essentials(uninterrupted)
    assert after_restart["participation"]["votes"] == uninterrupted["participation"]["votes"]


def test_a_conversation_is_computed_at_most_once_per_interval(sessions, engine, vtaiwan_batches):
    # Votes that come sooner than the interval after a computation wait for the next one, and
    # the worker's wait for work is shortened to when it is due.
    conversation, batches = vtaiwan_batches
    cid = new_conversation(sessions, len(conversation.statements))
    # (the interval outlasts storing a batch of 12,500 votes on a busy machine)
    worker = Worker(engine, interval_s=5.0, poll_s=30.0)
    add_votes(sessions, cid, batches[0])
    assert worker.step() == [cid]
    add_votes(sessions, cid, batches[1])
    assert worker.step() == []  # too soon: put off
    assert 0 < worker._wait_s() <= 5.0
    assert latest_result(sessions, cid)["tick"] == 1
    time.sleep(worker._wait_s())
    add_votes(sessions, cid, batches[2])
    assert worker.step() == [cid]
    published = latest_result(sessions, cid)
    assert published["tick"] == 2  # one update for both batches
    assert published["participation"]["votes"] == sum(len(b) for b in batches[:3])
    assert worker._wait_s() == 30.0  # nothing put off: the poll interval


def _as_older_version(payload: bytes) -> bytes:
    """The same saved state, marked as written by an earlier version of the math."""
    import io

    with np.load(io.BytesIO(payload)) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays["header"].tobytes())
    header["version"] = 1
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def test_a_state_saved_by_an_older_math_is_recomputed_from_every_vote(
    sessions, engine, vtaiwan_batches, caplog
):
    from polis_like.storage.jobs import load_state, save_state

    conversation, batches = vtaiwan_batches
    cid = new_conversation(sessions, len(conversation.statements))
    first = Worker(engine, name="first")
    for batch in batches[:2]:
        add_votes(sessions, cid, batch)
        first.step()
    first.release_all()
    with sessions.begin() as session:
        saved = load_state(session, cid)
        save_state(
            session,
            cid,
            tick=saved.tick,
            watermark=saved.watermark,
            revision=saved.revision,
            payload=_as_older_version(saved.payload),
        )
    upgraded = Worker(engine, name="upgraded")
    add_votes(sessions, cid, batches[2])
    with caplog.at_level("WARNING", logger="polis_like.worker"):
        assert upgraded.step() == [cid]
    assert "recomputing from every vote (unknown math state version 1)" in caplog.text
    published = latest_result(sessions, cid)
    assert published["participation"]["votes"] == sum(len(b) for b in batches[:3])
    # one update on every vote so far: the engine's static result
    everything = VoteEvents(
        *(
            np.concatenate([getattr(b, f) for b in batches[:3]])
            for f in ("timestamp_ms", "participant", "statement", "vote")
        )
    )
    direct, _ = compute(
        everything,
        n_participants=len(conversation.participant_ids),
        n_statements=len(conversation.statements),
    )
    assert published["k"] == direct.k
    assert [g["size"] for g in published["groups"]] == [
        int((direct.group == g).sum()) for g in range(direct.k)
    ]


def test_votes_arriving_together_make_one_update(sessions, engine, vtaiwan_batches):
    _, batches = vtaiwan_batches
    cid = new_conversation(sessions, 200)
    worker = Worker(engine)
    add_votes(sessions, cid, batches[0].take(slice(0, 300)))
    add_votes(sessions, cid, batches[0].take(slice(300, 700)))
    assert worker.step() == [cid]
    assert worker.step() == []  # nothing new: no needless recompute
    result = latest_result(sessions, cid)
    assert result["tick"] == 1 and result["participation"]["votes"] == 700


def test_moderation_and_bans_reach_the_math(sessions, engine, vtaiwan_batches):
    _, batches = vtaiwan_batches
    cid = new_conversation(sessions, 200)
    add_votes(sessions, cid, batches[0])
    worker = Worker(engine)
    worker.step()
    with sessions() as session:
        store.moderate(session, cid, [0, 1], status=-1, account_id=None)
        store.set_banned(session, cid, 3, True, None)
        session.commit()
    assert worker.step() == [cid]
    result = latest_result(sessions, cid)
    assert result["statements"]["0"]["moderated_out"] and result["statements"]["1"]["moderated_out"]
    assert not result["statements"]["2"]["moderated_out"]
    assert worker.memory[cid].state.banned[3]


def test_two_workers_never_compute_one_conversation_at_once(sessions, engine, vtaiwan_batches):
    _, batches = vtaiwan_batches
    cids = [new_conversation(sessions, 200, topic=f"c{i}") for i in range(3)]
    active: dict[int, str] = {}
    overlaps = []
    computed: dict[str, set[int]] = {"a": set(), "b": set()}
    lock = threading.Lock()

    def watch(name):
        def on_compute(cid, phase):
            with lock:
                if phase == "start":
                    if cid in active:
                        overlaps.append((cid, active[cid], name))
                    active[cid] = name
                    computed[name].add(cid)
                else:
                    active.pop(cid, None)

        return on_compute

    workers = {name: Worker(engine, name=name, lease_s=5.0, poll_s=0.05) for name in "ab"}
    for name, worker in workers.items():
        worker.on_compute = watch(name)
    threads = [threading.Thread(target=w.run) for w in workers.values()]
    for thread in threads:
        thread.start()
    try:
        chunks = np.array_split(np.arange(len(batches[0])), 12)
        for i, chunk in enumerate(chunks):
            add_votes(sessions, cids[i % 3], batches[0].take(chunk))
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                jobs = session.scalars(select(JobRow).where(JobRow.conversation_id.in_(cids)))
                top = {
                    c: session.scalar(
                        select(VoteEventRow.id)
                        .where(VoteEventRow.conversation_id == c)
                        .order_by(VoteEventRow.id.desc())
                        .limit(1)
                    )
                    for c in cids
                }
                if all(job.high_water == top[job.conversation_id] for job in jobs):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the workers did not catch up within 60 s")
    finally:
        for worker in workers.values():
            worker.stop()
        for thread in threads:
            thread.join(30)
    assert overlaps == []
    # each conversation stayed with one worker: its lease holder
    assert not (computed["a"] & computed["b"])
    with sessions() as session:
        for cid in cids:
            ticks = session.scalars(
                select(ResultRow.tick)
                .where(ResultRow.conversation_id == cid)
                .order_by(ResultRow.tick)
            ).all()
            assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))


def test_an_expired_lease_passes_to_another_worker(sessions, engine, vtaiwan_batches):
    _, batches = vtaiwan_batches
    cid = new_conversation(sessions, 200)
    add_votes(sessions, cid, batches[0].take(slice(0, 500)))
    first = Worker(engine, name="first", lease_s=0.5, save_every_s=0)
    assert first.step() == [cid]
    add_votes(sessions, cid, batches[0].take(slice(500, 1000)))
    second = Worker(engine, name="second", lease_s=0.5)
    assert second.step() == []  # the lease is still held
    time.sleep(0.6)  # the first worker died: its lease runs out
    assert second.step() == [cid]
    assert latest_result(sessions, cid)["tick"] == 2
    assert latest_result(sessions, cid)["participation"]["votes"] == 1000
    # the first worker comes back: it must not publish over the second's results
    add_votes(sessions, cid, batches[0].take(slice(1000, 1100)))
    assert first.step() == []
    assert second.step() == [cid]
    assert latest_result(sessions, cid)["tick"] == 3


def test_a_failing_conversation_is_recorded_and_the_others_go_on(
    sessions, engine, vtaiwan_batches, monkeypatch, caplog
):
    import worker.runner as runner

    _, batches = vtaiwan_batches
    bad = new_conversation(sessions, 200, topic="bad")
    good = new_conversation(sessions, 200, topic="good")
    add_votes(sessions, bad, batches[0].take(slice(0, 200)))
    add_votes(sessions, good, batches[0].take(slice(0, 200)))
    real_update = runner.math_update
    memory_of = {}

    def failing(state, events, **changes):
        if memory_of.get("current") == bad:
            raise RuntimeError("boom")
        return real_update(state, events, **changes)

    worker = Worker(engine)
    original = worker._compute

    def tracked(cid):
        memory_of["current"] = cid
        return original(cid)

    worker._compute = tracked
    monkeypatch.setattr(runner, "math_update", failing)
    assert worker.step() == [good]
    with sessions() as session:
        job = session.get(JobRow, bad)
        assert job.failures == 1 and "boom" in job.error and job.tick == 0
    assert f"conversation {bad} failed" in caplog.text
    # retried later (after a back-off), and cleared once it works
    monkeypatch.setattr(runner, "math_update", real_update)
    worker._retry_at.clear()
    assert worker.step() == [bad]
    with sessions() as session:
        assert session.get(JobRow, bad).error is None


def test_worker_command_runs_once(database_url, sessions, vtaiwan_batches, capsys):
    from polis_like.launcher.cli import main

    _, batches = vtaiwan_batches
    cid = new_conversation(sessions, 200)
    add_votes(sessions, cid, batches[0].take(slice(0, 300)))
    assert main(["worker", "--once", "--database-url", database_url]) == 0
    assert latest_result(sessions, cid)["tick"] == 1
    with sessions() as session:
        assert session.get(JobRow, cid).owner is None  # released on exit


def test_a_burst_of_votes_wakes_the_workers_once_per_half_second(postgres_url):
    """Each notice wakes every listening worker (and costs PostgreSQL a lock at commit): a web
    process sends the first vote's at once, then none for the next half second. (PostgreSQL
    only: on SQLite workers watch the file's data_version, and there are no notices.)"""
    import psycopg

    from polis_like.storage import notify
    from polis_like.storage.accounts import create_account
    from server.app import create_app

    app = create_app({"DATABASE_URL": postgres_url, "SECRET_KEY": "k", "TESTING": True})
    notify.vote_wake_ups._last.clear()
    client = app.test_client()
    with app.extensions["polis_like.sessions"]() as session:
        _, _, token = create_account(session, "wake-up", role="admin", password="password-1")
        session.commit()
    admin = {"topic": "Buses", "seed_statements": [f"s{i}" for i in range(40)]}
    cid = client.post(
        "/api/v1/conversations", json=admin, headers={"Authorization": f"Bearer {token}"}
    ).json["id"]
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {notify.CHANGES}")
        start = time.monotonic()
        voter = app.test_client()
        for sid in range(40):
            response = voter.post(
                f"/api/v1/conversations/{cid}/votes", json={"statement_id": sid, "vote": 1}
            )
            assert response.status_code == 200
        took = time.monotonic() - start
        notices = [n.payload for n in listener.notifies(timeout=0.2)]
    app.extensions["polis_like.engine"].dispose()
    assert notices and set(notices) == {str(cid)}
    assert len(notices) <= took / notify.WAKE_EVERY_S + 1, (len(notices), took)
    assert len(notices) < 40


def test_a_long_computation_does_not_freeze_the_other_conversations(
    sessions, engine, vtaiwan_batches, monkeypatch
):
    """Worker A holds two conversations; while it spends long on one, worker B takes the
    other and keeps it current."""
    import worker.runner as runner
    from polis_like.storage.jobs import TAKE_OVER_AFTER_S

    _, batches = vtaiwan_batches
    slow = new_conversation(sessions, 200, topic="slow")
    quick = new_conversation(sessions, 200, topic="quick")
    first, second = batches[0].take(slice(0, 300)), batches[0].take(slice(300, 600))
    for cid in (slow, quick):
        add_votes(sessions, cid, first)
    a, b = Worker(engine, name="a"), Worker(engine, name="b")
    assert sorted(a.step()) == sorted([slow, quick])  # a holds both leases now
    for cid in (slow, quick):
        add_votes(sessions, cid, second)

    computing = threading.local()
    real_update = runner.math_update

    def slow_update(state, events, **changes):
        if getattr(computing, "cid", None) == slow:
            time.sleep(TAKE_OVER_AFTER_S + 3)
        return real_update(state, events, **changes)

    original = a._compute

    def tracked(cid):
        computing.cid = cid
        return original(cid)

    a._compute = tracked
    monkeypatch.setattr(runner, "math_update", slow_update)
    done = {}
    busy = threading.Thread(target=lambda: done.setdefault("a", a.step()))
    busy.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until a has computed slow for long enough
        with sessions() as session:
            since = session.get(JobRow, slow).computing_since
        if since is not None and time.time() - since > TAKE_OVER_AFTER_S + 0.5:
            break
        time.sleep(0.1)
    assert b.step() == [quick]  # taken over while a is busy
    assert busy.is_alive()
    assert latest_result(sessions, quick)["tick"] == 2
    busy.join()
    assert done["a"] == [slow]  # a no longer holds quick: it leaves it to b
    assert latest_result(sessions, slow)["tick"] == 2
    with sessions() as session:
        assert session.get(JobRow, quick).owner == "b"
        assert session.get(JobRow, slow).computing_since is None
