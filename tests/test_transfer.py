"""Import of Pol.is exports and export of conversations: storage, API and command line.

Every test runs on SQLite and on PostgreSQL. The reference for an export is what our own writer
makes of the export read back with no groups (the service has not computed any yet).
"""

from __future__ import annotations

import copy
import io
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CONVERSATIONS, FIXTURES, give_conversation
from sqlalchemy import func, select

from polis_like.conversation import Conversation, Moderation, VoteEvents
from polis_like.conversation import Statement as ExportStatement
from polis_like.errors import NotFound
from polis_like.io import read_export, write_export
from polis_like.io.polis_csv import VOTES
from polis_like.math.matrix import CODE_OFFSET, latest_votes
from polis_like.storage import models
from polis_like.storage.conversations import text_key
from polis_like.storage.transfer import (
    export_conversation,
    import_conversation,
    import_export,
    write_conversation,
)

FILES = ("votes.csv", "comments.csv", "participants-votes.csv", "summary.csv", "stats-history.csv")
SMALL = "london.youth.policing"


def reference(conversation: Conversation, folder: Path, *, exact: bool = False) -> Path:
    """What our writer makes of ``conversation`` with every participant ungrouped."""
    write_export(
        conversation, folder, groups=dict.fromkeys(conversation.participant_ids), exact=exact
    )
    return folder


def assert_same_files(expected: Path, actual: Path) -> None:
    for name in FILES:
        assert (actual / name).read_bytes() == (expected / name).read_bytes(), name


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def assert_stored(sessions, conversation_id: int, conversation: Conversation) -> None:
    """Ids, statements, xids, every vote event (in time order) and the latest votes survive."""
    with sessions() as session:
        row = session.get(models.ConversationRow, conversation_id)
        statements = session.scalars(
            select(models.StatementRow)
            .where(models.StatementRow.conversation_id == conversation_id)
            .order_by(models.StatementRow.sid)
        ).all()
        participants = session.execute(
            select(models.ParticipantRow.pid, models.ParticipantRow.xid)
            .where(models.ParticipantRow.conversation_id == conversation_id)
            .order_by(models.ParticipantRow.pid)
        ).all()
        events = session.execute(
            select(
                models.VoteEventRow.created_ms,
                models.VoteEventRow.pid,
                models.VoteEventRow.sid,
                models.VoteEventRow.vote,
            )
            .where(models.VoteEventRow.conversation_id == conversation_id)
            .order_by(models.VoteEventRow.id)
        ).all()
        latest = session.execute(
            select(models.LatestVoteRow.pid, models.LatestVoteRow.sid, models.LatestVoteRow.vote)
            .where(models.LatestVoteRow.conversation_id == conversation_id)
            .order_by(models.LatestVoteRow.pid, models.LatestVoteRow.sid)
        ).all()
        job = session.get(models.JobRow, conversation_id)
    pids = [int(p) for p in conversation.participant_ids]
    assert [p.pid for p in participants] == pids
    assert {str(p.pid): p.xid for p in participants if p.xid} == conversation.xids
    assert row.next_pid == max(pids) + 1
    assert row.next_sid == max(int(s.id) for s in conversation.statements) + 1
    assert row.revision == 0 and row.moderation == "open"
    assert job is not None and job.tick == 0
    assert [(s.sid, s.text, s.author_pid, s.status, s.is_meta) for s in statements] == [
        (int(s.id), s.text, int(s.author_id) if s.author_id else None, int(s.moderation), s.is_meta)
        for s in conversation.statements
    ]
    assert [s.created_ms for s in statements] == [
        s.created_ms or 0 for s in conversation.statements
    ]
    assert len({s.text_key for s in statements}) == len(statements)

    votes = conversation.votes
    order = votes.time_order()
    sids = [int(s.id) for s in conversation.statements]
    times = votes.timestamp_ms[order] if conversation.has_timestamps else np.zeros(len(order))
    assert [tuple(e) for e in events] == list(
        zip(
            times.tolist(),
            [pids[p] for p in votes.participant[order].tolist()],
            [sids[s] for s in votes.statement[order].tolist()],
            votes.vote[order].tolist(),
            strict=True,
        )
    )

    codes = latest_votes(votes, len(pids), len(sids))
    who = np.repeat(np.arange(codes.shape[0]), np.diff(codes.indptr))
    expected = sorted(
        zip(
            [pids[p] for p in who.tolist()],
            [sids[s] for s in codes.indices],
            (codes.data.astype(int) - CODE_OFFSET).tolist(),
            strict=True,
        )
    )
    assert [tuple(v) for v in latest] == expected


# -- storage -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_import_then_export_gives_the_same_files(name, sessions, load_conversation, tmp_path):
    conversation = load_conversation(name)
    conversation_id = import_export(sessions, FIXTURES / name)
    assert_stored(sessions, conversation_id, conversation)
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path / "ours", exact=True)
        row = session.get(models.ConversationRow, conversation_id)
        assert row.topic == conversation.summary["topic"]
        assert row.description == conversation.summary["conversation-description"]
    expected = reference(conversation, tmp_path / "reference", exact=True)
    assert_same_files(expected, tmp_path / "ours")


def edge_cases(conversation: Conversation) -> Conversation:
    """A real conversation with what the fixtures lack: meta statements, xids, a repeated text,
    a statement without a time, two votes at the same millisecond, the smaller one last, and
    texts that begin like a spreadsheet formula."""
    c = copy.deepcopy(conversation)
    c.statements[0].is_meta = True
    c.statements[3].text = "=1+1 " + c.statements[3].text
    c.statements[4].text = "-" + c.statements[4].text
    c.statements[1].moderation = Moderation.REJECTED
    c.xids = {pid: f"user-{pid}@example.org" for pid in c.participant_ids[::2]}
    c.xids[c.participant_ids[1]] = "@user-1"
    last = max(int(s.id) for s in c.statements)
    c.statements.append(
        ExportStatement(
            id=str(last + 5),
            text=c.statements[2].text.upper(),
            author_id=c.participant_ids[-1],
            created_ms=None,
            moderation=Moderation.ACCEPTED,
        )
    )
    v = c.votes
    at = int(v.timestamp_ms.max()) + 1000
    who, which = int(v.participant[0]), len(c.statements) - 1
    c.votes = VoteEvents(
        np.append(v.timestamp_ms, [at, at]),
        np.append(v.participant, [who, who]),
        np.append(v.statement, [which, which]),
        np.append(v.vote, [1, -1]),
    )
    c.reference_groups = {}
    return c


def test_meta_xids_repeated_texts_undated_statements_and_ties_round_trip(
    sessions, load_conversation, tmp_path
):
    conversation = edge_cases(load_conversation(SMALL))
    source = reference(conversation, tmp_path / "source", exact=True)
    read_back = read_export(source)
    assert [s.text for s in read_back.statements] == [s.text for s in conversation.statements]
    assert read_back.xids == conversation.xids
    conversation_id = import_export(sessions, source)
    assert_stored(sessions, conversation_id, read_back)
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path / "ours", exact=True)
        latest = session.execute(
            select(models.LatestVoteRow.vote).where(
                models.LatestVoteRow.conversation_id == conversation_id,
                models.LatestVoteRow.sid == int(conversation.statements[-1].id),
            )
        ).scalar_one()
        keys = session.scalars(
            select(models.StatementRow.text_key).where(
                models.StatementRow.conversation_id == conversation_id
            )
        ).all()
    assert latest == 1  # the tie goes to the larger vote, as in the math
    assert text_key(conversation.statements[2].text) in keys  # the first of the repeats keeps it
    assert_same_files(source, tmp_path / "ours")


def test_an_export_written_in_small_chunks_is_the_same(
    sessions, load_conversation, tmp_path, monkeypatch
):
    """Exports stream the votes, read and written a chunk at a time: where the chunks end (a
    participant's votes or one millisecond's votes split between two) changes no byte."""
    from polis_like.io import write
    from polis_like.storage import bulk

    conversation = edge_cases(load_conversation(SMALL))
    source = reference(conversation, tmp_path / "source", exact=True)
    conversation_id = import_export(sessions, source)
    monkeypatch.setattr(bulk, "SQLITE_CHUNK", 7)
    monkeypatch.setattr(bulk, "COPY_CHUNK", 100)
    monkeypatch.setattr(write, "CHUNK", 5)
    monkeypatch.setattr(write, "BLOCK_CELLS", 30)
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path / "stored", exact=True)
    assert_same_files(source, tmp_path / "stored")
    assert_same_files(source, reference(conversation, tmp_path / "memory", exact=True))


def test_an_export_with_ids_too_large_to_pack_is_the_same(sessions, load_conversation, tmp_path):
    """SQLite's export reads a vote's pid, sid and value as one integer when they fit (pids
    below 2**29); a larger pid is read as separate columns, with the same files."""
    conversation = edge_cases(load_conversation(SMALL))
    old = conversation.participant_ids[1]
    new = str(2**30 + 7)
    conversation.participant_ids[1] = new
    conversation.xids[new] = conversation.xids.pop(old)
    for statement in conversation.statements:
        if statement.author_id == old:
            statement.author_id = new
    source = reference(conversation, tmp_path / "source", exact=True)
    conversation_id = import_export(sessions, source)
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path / "stored", exact=True)
    assert_same_files(source, tmp_path / "stored")
    assert new in (tmp_path / "stored" / "votes.csv").read_text()


def test_an_export_without_votes_csv_imports_and_exports_stably(sessions, tmp_path):
    source = tmp_path / "matrix-only"
    source.mkdir()
    for name in ("participants-votes.csv", "summary.csv"):
        shutil.copy(FIXTURES / SMALL / name, source / name)
    conversation_id = import_export(sessions, source)
    with sessions() as session:
        times = session.scalars(
            select(models.VoteEventRow.created_ms).where(
                models.VoteEventRow.conversation_id == conversation_id
            )
        ).all()
        write_conversation(session, conversation_id, tmp_path / "first")
    assert times and set(times) == {0}
    votes = (tmp_path / "first" / "votes.csv").read_text().splitlines()
    assert votes[1].startswith("0,,")  # no made-up datetimes
    assert (tmp_path / "first" / "stats-history.csv").read_text().count("\n") == 1
    again = import_export(sessions, tmp_path / "first")
    with sessions() as session:
        write_conversation(session, again, tmp_path / "second")
    assert_same_files(tmp_path / "first", tmp_path / "second")


def test_topic_argument_and_progress(sessions, load_conversation):
    calls = []
    conversation_id = import_conversation(
        sessions,
        load_conversation(SMALL),
        topic="  Mine ",
        progress=lambda done, total: calls.append((done, total)),
    )
    with sessions() as session:
        assert session.get(models.ConversationRow, conversation_id).topic == "Mine"
    totals = {total for _, total in calls}
    assert len(totals) == 1
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == totals.pop() > 0


def test_a_failure_half_way_leaves_nothing_behind(sessions, load_conversation):
    def progress(done, total):
        if done > total // 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError):
        import_conversation(sessions, load_conversation(SMALL), progress=progress)
    for model in (
        models.ConversationRow,
        models.ParticipantRow,
        models.StatementRow,
        models.VoteEventRow,
        models.LatestVoteRow,
        models.JobRow,
    ):
        assert count(sessions, model) == 0


def test_export_of_an_unknown_conversation_is_not_found(sessions):
    with sessions() as session, pytest.raises(NotFound):
        export_conversation(session, 12345)


def test_after_the_worker_the_group_column_holds_our_groups(engine, sessions, tmp_path):
    from polis_like.storage.results import read_positions
    from worker.runner import Worker

    conversation_id = import_export(sessions, FIXTURES / "brexit-consensus")
    worker = Worker(engine)
    assert worker.step() == [conversation_id]
    # On PostgreSQL a transaction still running elsewhere on the server
    # can hold the imported votes back from the worker's first read for a while.
    deadline = time.monotonic() + 60
    while True:
        with sessions() as session:
            positions = session.scalar(
                select(models.ResultRow.positions)
                .where(models.ResultRow.conversation_id == conversation_id)
                .order_by(models.ResultRow.tick.desc())
                .limit(1)
            )
        group = read_positions(positions).group
        if len(set(group[group >= 0].tolist())) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
        worker.step()
    with sessions() as session:
        write_conversation(session, conversation_id, tmp_path)
    exported = read_export(tmp_path)
    expected = {
        pid: (int(group[int(pid)]) if group[int(pid)] >= 0 else None)
        for pid in exported.participant_ids
    }
    assert exported.reference_groups == expected
    grouped = [g for g in exported.reference_groups.values() if g is not None]
    assert len(set(grouped)) >= 2
    assert exported.summary["groups"] == str(len(set(grouped)))
    assert exported.summary["voters-in-conv"] == str(len(grouped))


# -- API -----------------------------------------------------------------------------------


@pytest.fixture
def small(sessions, load_conversation, tmp_path):
    """The small fixture imported: (conversation id, folder of its reference export)."""
    conversation_id = import_export(sessions, FIXTURES / SMALL)
    return conversation_id, reference(load_conversation(SMALL), tmp_path / "reference")


def test_api_exports_each_file_and_the_zip(client, staff, small, load_conversation, tmp_path):
    conversation_id, expected = small
    give_conversation(client, staff, conversation_id)
    exact = reference(load_conversation(SMALL), tmp_path / "exact", exact=True)
    for name in FILES:
        response = client.get(
            f"/api/v1/conversations/{conversation_id}/export/{name}", headers=staff["moderator"]
        )
        assert response.status_code == 200, response.json
        assert response.mimetype == "text/csv"
        assert name in response.headers["Content-Disposition"]
        assert response.data == (expected / name).read_bytes()
    response = client.get(
        f"/api/v1/conversations/{conversation_id}/export.zip", headers=staff["moderator"]
    )
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert ".zip" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert sorted(archive.namelist()) == sorted(FILES)
        for name in FILES:
            assert archive.read(name) == (expected / name).read_bytes()
    response = client.get(
        f"/api/v1/conversations/{conversation_id}/export.zip?exact=1", headers=staff["moderator"]
    )
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        for name in FILES:
            assert archive.read(name) == (exact / name).read_bytes()


def test_api_export_errors(client, staff, small):
    conversation_id, _ = small
    assert (
        client.get(f"/api/v1/conversations/{conversation_id}/export/votes.csv").status_code == 401
    )
    for path in (
        "/api/v1/conversations/999/export/votes.csv",
        "/api/v1/conversations/999/export.zip",
        f"/api/v1/conversations/{conversation_id}/export/passwords.csv",
    ):
        response = client.get(path, headers=staff["admin"])
        assert response.status_code == 404, path
        assert response.json["error"]["status"] == 404


def test_api_imports_a_zip_body_and_a_multipart_upload(
    client, staff, sessions, tmp_path, load_conversation
):
    data = zipped(FIXTURES / SMALL)
    response = client.post(
        "/api/v1/conversations/import",
        data=data,
        content_type="application/zip",
        headers=staff["admin"],
    )
    assert response.status_code == 201, response.json
    first = response.json["id"]
    assert response.json["topic"] == load_conversation(SMALL).summary["topic"]
    assert response.headers["Location"].endswith(f"/api/v1/conversations/{first}")
    assert client.get(response.headers["Location"]).json["id"] == first

    response = client.post(
        "/api/v1/conversations/import?topic=ignored",
        data={"file": (io.BytesIO(data), "london.zip"), "topic": "Youth"},
        content_type="multipart/form-data",
        headers=staff["admin"],
    )
    assert response.status_code == 201, response.json
    second = response.json["id"]
    assert second != first and response.json["topic"] == "Youth"

    expected = reference(load_conversation(SMALL), tmp_path / "reference")
    for conversation_id in (first, second):
        response = client.get(
            f"/api/v1/conversations/{conversation_id}/export.zip", headers=staff["admin"]
        )
        with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
            for name in FILES:
                if name != "summary.csv" or conversation_id == first:
                    assert archive.read(name) == (expected / name).read_bytes(), name


def test_api_import_refusals_store_nothing(client, staff, sessions, tmp_path):
    url = "/api/v1/conversations/import"
    data = zipped(FIXTURES / SMALL)
    assert client.post(url, data=data, content_type="application/zip").status_code == 401
    response = client.post(
        url, data=data, content_type="application/zip", headers=staff["moderator"]
    )
    assert response.status_code == 403

    response = client.post(
        url,
        data=b"PK\x03\x04 not really a zip",
        content_type="application/zip",
        headers=staff["admin"],
    )
    assert response.status_code == 400
    assert response.json["error"]["status"] == 400
    assert "upload.zip" in response.json["error"]["message"]

    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("notes.txt", "no export here")
    response = client.post(
        url, data=empty.getvalue(), content_type="application/zip", headers=staff["admin"]
    )
    assert response.status_code == 400 and VOTES in response.json["error"]["message"]

    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES / SMALL, bad)
    lines = (bad / VOTES).read_text().splitlines(keepends=True)
    fields = lines[2].split(",")
    fields[-1] = "7\n"
    lines[2] = ",".join(fields)
    (bad / VOTES).write_text("".join(lines))
    response = client.post(
        url,
        data={"file": (io.BytesIO(zipped(bad)), "bad.zip")},
        content_type="multipart/form-data",
        headers=staff["admin"],
    )
    assert response.status_code == 400
    message = response.json["error"]["message"]
    assert message.startswith(f"bad.zip/{VOTES}:3: ") and "'7'" in message, message

    response = client.post(url, data=b"", content_type="application/zip", headers=staff["admin"])
    assert response.status_code == 400
    response = client.post(
        url, data={"topic": "no file"}, content_type="multipart/form-data", headers=staff["admin"]
    )
    assert response.status_code == 400
    assert count(sessions, models.ConversationRow) == 0
    assert count(sessions, models.VoteEventRow) == 0


# -- command line --------------------------------------------------------------------------


def test_cli_imports_and_exports(cli, database_url, tmp_path, capsys, load_conversation):
    main = cli
    assert main(["import", str(FIXTURES / SMALL), "--database-url", database_url]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("imported conversation ")
    conversation_id = out.rsplit(" ", 1)[1]
    out = ["export", conversation_id, str(tmp_path / "out"), "--exact"]
    assert main([*out, "--database-url", database_url]) == 0
    assert capsys.readouterr().out.startswith(f"wrote conversation {conversation_id} to ")
    expected = reference(load_conversation(SMALL), tmp_path / "reference", exact=True)
    assert_same_files(expected, tmp_path / "out")

    assert main(["import", str(tmp_path / "missing"), "--database-url", database_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("polis-like: error:") == 1
    assert "missing" in captured.err.strip().splitlines()[-1]
    assert main(["export", "999", str(tmp_path / "none"), "--database-url", database_url]) == 2
    assert capsys.readouterr().err.count("polis-like: error:") == 1
