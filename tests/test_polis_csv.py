"""The Pol.is export format: real exports round-trip, and hostile-but-valid CSV reads."""

from __future__ import annotations

import csv
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CONVERSATIONS, FIXTURES

from polis_like.conversation import Conversation, Moderation, Statement, VoteEvents
from polis_like.io import read_export, write_export

VOTES = "timestamp,datetime,comment-id,voter-id,vote\n"
COMMENTS = "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"


def make_export(folder: Path, **files: str | bytes) -> Path:
    """Write files named like ``votes_csv`` -> ``votes.csv`` (str as UTF-8, bytes as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name.replace("_csv", ".csv").replace("_", "-")).write_bytes(data)
    return folder


def small_export(folder: Path, datetime: str = "Thu Jan 01 00:00:01 WIB 1970") -> Path:
    """Two statements, two voters; voter 2 changes their vote on statement 0 (rows out of order)."""
    return make_export(
        folder,
        votes_csv=VOTES
        + f"3000,{datetime},0,2,1\n1000,{datetime},0,1,-1\n2000,{datetime},0,2,-1\n"
        + f"2500,{datetime},1,2,0\n",
        comments_csv=COMMENTS + "900,,0,1,1,1,1,First\n950,,1,2,0,0,0,Second\n",
    )


def events(conversation: Conversation) -> list[tuple[int, str, str, int]]:
    """Vote events as sorted (timestamp, participant id, statement id, vote) tuples."""
    votes = conversation.votes
    pids = conversation.participant_ids
    sids = [s.id for s in conversation.statements]
    return sorted(
        (t, pids[p], sids[s], v)
        for t, p, s, v in zip(
            votes.timestamp_ms.tolist(),
            votes.participant.tolist(),
            votes.statement.tolist(),
            votes.vote.tolist(),
            strict=True,
        )
    )


def assert_same_conversation(a: Conversation, b: Conversation) -> None:
    assert a.statements == b.statements
    assert a.participant_ids == b.participant_ids
    assert a.xids == b.xids
    assert events(a) == events(b)
    assert a.reference_groups == b.reference_groups
    for key in ("topic", "url", "views", "conversation-description"):
        assert a.summary.get(key, "") == b.summary.get(key, "")
    assert a.has_timestamps == b.has_timestamps


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# Real exports


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Read a fixture and write it out once per module: name -> (conversation, folder written)."""
    cache: dict[str, tuple[Conversation, Path]] = {}

    def export(name: str) -> tuple[Conversation, Path]:
        if name not in cache:
            conversation, out = read_export(FIXTURES / name), tmp_path_factory.mktemp(name)
            write_export(conversation, out)
            cache[name] = conversation, out
        return cache[name]

    return export


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_every_fixture_survives_read_write_read(name, exported):
    original, out = exported(name)
    assert_same_conversation(original, read_export(out))


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_written_participants_votes_reproduce_the_polis_matrix(name, exported):
    _, tmp_path = exported(name)
    polis_file = FIXTURES / name / "participants-votes.csv"
    theirs = {row["participant"]: row for row in read_rows(polis_file)}
    ours = {row["participant"]: row for row in read_rows(tmp_path / "participants-votes.csv")}
    assert ours.keys() == theirs.keys()
    for pid, row in theirs.items():
        # Pol.is leaves out columns of statements nobody voted on (we write every statement) and
        # may write an xid column with no xids in it (we write one only when there are xids).
        assert row.pop("xid", "") == ""
        assert {k: ours[pid][k] for k in row} == row


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_participants_votes_only_export_survives_round_trip(name, tmp_path):
    source = make_export(tmp_path / "pv-only")
    for file in ("participants-votes.csv", "comments.csv", "summary.csv"):
        shutil.copy(FIXTURES / name / file, source / file)
    original = read_export(source)
    assert not original.has_timestamps
    write_export(original, tmp_path / "out")
    assert_same_conversation(original, read_export(tmp_path / "out"))


def test_participants_votes_only_gives_the_latest_votes_of_the_full_export(tmp_path):
    folder = FIXTURES / "london.youth.policing"
    for file in ("participants-votes.csv", "comments.csv"):
        shutil.copy(folder / file, tmp_path / file)
    latest = {(p, s): v for _, p, s, v in events(read_export(folder))}  # in time order: later wins
    pv_only = {(p, s): v for _, p, s, v in events(read_export(tmp_path))}
    assert pv_only == latest


def test_vtaiwan_reads_in_well_under_a_second():
    start = time.perf_counter()
    conversation = read_export(FIXTURES / "vtaiwan.uberx")
    assert time.perf_counter() - start < 1.0
    assert len(conversation.votes) == 49997
    assert len(conversation.statements) == 197
    assert len(conversation.participant_ids) == 1921


def test_fixture_details_are_read():
    london = read_export(FIXTURES / "london.youth.policing")
    assert "0" in london.participant_ids  # authored statements, never voted
    assert "0" not in london.reference_groups
    assert sorted(set(london.reference_groups.values()), key=str) == [0, 1, 2, None]
    assert london.statements[0].moderation == Moderation.REJECTED
    # a newer layout: no datetime column, is-meta as true/false
    bg = read_export(FIXTURES / "bg2050-volunteers")
    assert sum(s.is_meta for s in bg.statements) == 1
    assert bg.summary["conversation-description"].startswith("In the next 25 years")
    assert "\n\nWhat would you want" in bg.summary["conversation-description"]


# The writer


def test_written_files_follow_the_polis_layout(tmp_path):
    conversation = read_export(small_export(tmp_path / "in"))
    conversation.summary = {"topic": "T", "extra": "kept", "url": "u"}
    write_export(conversation, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "votes.csv").read_text(encoding="utf-8") == (
        VOTES
        + "1000,Thu Jan 01 00:00:01 UTC 1970,0,1,-1\n"
        + "2000,Thu Jan 01 00:00:02 UTC 1970,0,2,-1\n"
        + "2500,Thu Jan 01 00:00:02 UTC 1970,1,2,0\n"
        + "3000,Thu Jan 01 00:00:03 UTC 1970,0,2,1\n"
    )
    assert (out / "comments.csv").read_text(encoding="utf-8") == (
        COMMENTS
        + "900,Thu Jan 01 00:00:00 UTC 1970,0,1,1,1,1,First\n"
        + "950,Thu Jan 01 00:00:00 UTC 1970,1,2,0,0,0,Second\n"
    )
    assert (out / "participants-votes.csv").read_text(encoding="utf-8") == (
        "participant,group-id,n-comments,n-votes,n-agree,n-disagree,0,1\n"
        "1,,1,1,0,1,-1,\n"
        "2,,1,2,1,0,1,0\n"
    )
    assert (out / "summary.csv").read_text(encoding="utf-8") == (
        "topic,T\nurl,u\nviews,\nvoters,2\nvoters-in-conv,0\ncommenters,2\ncomments,2\ngroups,0\n"
        "conversation-description,\nextra,kept\n"
    )


def test_datetime_is_written_in_utc_like_java_date(tmp_path):
    conversation = Conversation(
        statements=[Statement("0", "s", "0", 1435654192085)],
        participant_ids=["0"],
        votes=VoteEvents([1435654192085], [0], [0], [1]),
    )
    write_export(conversation, tmp_path)
    assert read_rows(tmp_path / "votes.csv")[0]["datetime"] == "Tue Jun 30 08:49:52 UTC 2015"
    assert read_rows(tmp_path / "comments.csv")[0]["datetime"] == "Tue Jun 30 08:49:52 UTC 2015"


def test_votes_csv_formats_whole_columns_as_each_value_alone_would_be(tmp_path):
    """votes.csv's numbers and dates are formatted a column at a time: each cell is what
    str() and polis_datetime give for its value, far times and negative ones included."""
    from polis_like.io.polis_csv import polis_datetime

    rng = np.random.default_rng(0)
    edges = [0, -1, 999, -1000, -1001, 951_782_400_000, 4_107_542_399_999]  # 2000-02-29, 2099
    edges += [253_402_300_799_999, 253_402_300_800_000]  # the last second of year 9999, 10000
    edges += [-30_610_224_000_000, -30_610_224_000_001, 2**62]  # year 1000, 999, beyond
    times = np.concatenate([edges, rng.integers(-4 * 10**13, 3 * 10**14, 2_000)])
    n = len(times)
    conversation = Conversation(
        statements=[Statement(str(j), "s", None, 0) for j in (0, 7, 1234567)],
        participant_ids=["0", "5", "98765"],
        votes=VoteEvents(times, np.arange(n) % 3, np.arange(n) % 2 * 2, np.arange(n) % 3 - 1),
    )
    write_export(conversation, tmp_path)
    order = np.argsort(times, kind="stable")
    expected = [
        [
            str(t),
            polis_datetime(t),
            ("0", "1234567")[k % 2],
            ("0", "5", "98765")[k % 3],
            str(k % 3 - 1),
        ]
        for t, k in zip(times[order].tolist(), order.tolist(), strict=True)
    ]
    with open(tmp_path / "votes.csv", newline="") as file:
        assert list(csv.reader(file))[1:] == expected


def test_groups_argument_replaces_reference_groups_in_matrix_and_summary(tmp_path):
    conversation = read_export(small_export(tmp_path / "in"))
    conversation.reference_groups = {"1": 0, "2": 0}
    write_export(conversation, tmp_path / "a", groups={"1": 3, "2": 5})
    rows = read_rows(tmp_path / "a" / "participants-votes.csv")
    assert [row["group-id"] for row in rows] == ["3", "5"]
    summary = read_export(tmp_path / "a").summary
    assert (summary["groups"], summary["voters-in-conv"]) == ("2", "2")
    write_export(conversation, tmp_path / "b", in_conversation=7)
    summary = read_export(tmp_path / "b").summary
    assert (summary["groups"], summary["voters-in-conv"]) == ("1", "7")


def test_meta_statements_add_an_is_meta_column_that_reads_back(tmp_path):
    conversation = read_export(small_export(tmp_path / "in"))
    write_export(conversation, tmp_path / "plain")
    header = (tmp_path / "plain" / "comments.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "is-meta" not in header
    conversation.statements[1].is_meta = True
    write_export(conversation, tmp_path / "meta")
    rows = read_rows(tmp_path / "meta" / "comments.csv")
    assert list(rows[0])[:8] == COMMENTS.strip().split(",")
    assert [row["is-meta"] for row in rows] == ["0", "1"]
    assert [s.is_meta for s in read_export(tmp_path / "meta").statements] == [False, True]


def test_stats_history_has_polis_columns_and_cumulative_counts(tmp_path):
    conversation = read_export(small_export(tmp_path / "in"))
    write_export(conversation, tmp_path / "out")
    text = (tmp_path / "out" / "stats-history.csv").read_text(encoding="utf-8")
    # time 900: 1 arrives, 1 comments; 950: 2 arrives, 2 comments; then four votes
    assert text == (
        "n-votes,n-comments,n-visitors,n-voters,n-commenters\n"
        "0,0,1,0,0\n0,1,1,0,1\n0,1,2,0,1\n0,2,2,0,2\n"
        "1,2,2,1,2\n2,2,2,2,2\n3,2,2,2,2\n4,2,2,2,2\n"
    )


def test_author_who_never_voted_stays_out_of_the_matrix_but_survives(tmp_path):
    conversation = read_export(FIXTURES / "london.youth.policing")
    write_export(conversation, tmp_path)
    participants = [row["participant"] for row in read_rows(tmp_path / "participants-votes.csv")]
    assert "0" not in participants
    assert "0" in read_export(tmp_path).participant_ids


# Hostile but valid input


def test_comment_body_with_quotes_commas_and_newlines_survives_round_trip(tmp_path):
    body = 'He said "no, never",\nthen left.\r\nA lone\rreturn, a tab\t and 中文 ✓'
    text = body.replace('"', '""')
    folder = make_export(
        tmp_path / "in",
        votes_csv=VOTES + "1,,0,1,1\n",
        comments_csv=COMMENTS + f'0,,0,1,1,0,1,"{text}"\n',
    )
    conversation = read_export(folder)
    assert conversation.statements[0].text == body
    conversation.summary = {"topic": 'A "quoted", topic', "conversation-description": body}
    write_export(conversation, tmp_path / "out")
    again = read_export(tmp_path / "out")
    assert again.statements[0].text == body
    assert again.summary["topic"] == 'A "quoted", topic'
    assert again.summary["conversation-description"] == body


def test_byte_order_mark_is_ignored(tmp_path):
    folder = small_export(tmp_path)
    for name in ("votes.csv", "comments.csv"):
        (folder / name).write_bytes(b"\xef\xbb\xbf" + (folder / name).read_bytes())
    make_export(folder, summary_csv="\ufefftopic,T\n")
    conversation = read_export(folder)
    assert len(conversation.votes) == 4
    assert conversation.summary == {"topic": "T"}


def test_crlf_line_ends_are_read(tmp_path):
    folder = small_export(tmp_path)
    for name in ("votes.csv", "comments.csv"):
        (folder / name).write_bytes((folder / name).read_bytes().replace(b"\n", b"\r\n"))
    conversation = read_export(folder)
    assert len(conversation.votes) == 4
    assert [s.text for s in conversation.statements] == ["First", "Second"]


def test_extra_columns_and_blank_lines_are_ignored(tmp_path):
    folder = make_export(
        tmp_path,
        votes_csv="weight,timestamp,datetime,comment-id,voter-id,vote,note\n"
        "9,1000,,0,1,1,x\n\n9,2000,,0,2,-1,y\n\n",
        comments_csv="timestamp,comment-id,author-id,agrees,disagrees,moderated,is-seed,"
        "comment-body\n5,0,1,1,1,1,true,Hello\n",
    )
    conversation = read_export(folder)
    assert events(conversation) == [(1000, "1", "0", 1), (2000, "2", "0", -1)]
    assert conversation.statements == [Statement("0", "Hello", "1", 5, Moderation.ACCEPTED)]


def test_columns_are_found_by_name_in_any_order(tmp_path):
    folder = make_export(
        tmp_path,
        votes_csv="vote,voter-id,comment-id,datetime,timestamp\n-1,7,3,,1000\n",
        comments_csv="comment-body,moderated,author-id,comment-id,timestamp\nHi,-1,7,3,500\n",
        participants_votes_csv="3,n-votes,group-id,participant\n-1,1,1,7\n",
    )
    conversation = read_export(folder)
    assert events(conversation) == [(1000, "7", "3", -1)]
    assert conversation.statements == [Statement("3", "Hi", "7", 500, Moderation.REJECTED)]
    assert conversation.reference_groups == {"7": 1}


def test_xid_column_is_read_and_written_back(tmp_path):
    folder = make_export(
        tmp_path / "in",
        votes_csv=VOTES + "1,,0,1,1\n2,,0,2,0\n",
        comments_csv=COMMENTS + "0,,0,1,1,0,1,c\n",
        participants_votes_csv="participant,xid,group-id,n-comments,n-votes,n-agree,n-disagree,0\n"
        '1,"ext,1",0,1,1,1,0,1\n2,,,0,1,0,0,0\n',
    )
    conversation = read_export(folder)
    assert conversation.xids == {"1": "ext,1"}
    assert conversation.reference_groups == {"1": 0, "2": None}
    write_export(conversation, tmp_path / "out")
    written = (tmp_path / "out" / "participants-votes.csv").read_text(encoding="utf-8")
    header = written.split("\n")[0]
    assert header.startswith("participant,xid,group-id,")
    assert read_export(tmp_path / "out").xids == {"1": "ext,1"}


@pytest.mark.parametrize("prefix", ["", "export-2015/"])
def test_zip_with_files_at_the_top_or_in_one_folder_is_read(prefix, tmp_path):
    folder = FIXTURES / "brexit-consensus"
    archive = tmp_path / "brexit.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in folder.iterdir():
            zf.write(file, prefix + file.name)
        zf.writestr("__MACOSX/._votes.csv", b"\x00\x05")
    assert_same_conversation(read_export(archive), read_export(folder))


def test_participants_votes_only_input_builds_events_in_row_then_column_order(tmp_path):
    folder = make_export(
        tmp_path,
        participants_votes_csv="participant,group-id,n-comments,n-votes,n-agree,n-disagree,5,2\n"
        "9,1,0,2,1,0,1,0\n3,,0,1,0,1,,-1\n4,,0,0,0,0,,\n",
    )
    conversation = read_export(folder)
    assert not conversation.has_timestamps
    assert conversation.participant_ids == ["3", "4", "9"]
    assert [s.id for s in conversation.statements] == ["2", "5"]
    assert [s.text for s in conversation.statements] == ["", ""]
    assert events(conversation) == [(0, "9", "5", 1), (1, "9", "2", 0), (2, "3", "2", -1)]
    assert conversation.reference_groups == {"9": 1, "3": None, "4": None}


def test_participants_votes_only_takes_text_from_comments_when_present(tmp_path):
    folder = make_export(
        tmp_path,
        participants_votes_csv="participant,group-id,1\n0,,1\n",
        comments_csv=COMMENTS + "10,,1,5,0,0,1,Known\n20,,2,5,0,0,-1,Unvoted\n",
    )
    conversation = read_export(folder)
    assert [(s.id, s.text, s.author_id) for s in conversation.statements] == [
        ("1", "Known", "5"),
        ("2", "Unvoted", "5"),
    ]
    assert conversation.participant_ids == ["0", "5"]


def test_ids_are_ordered_numerically_and_leading_zeros_dropped(tmp_path):
    folder = make_export(
        tmp_path,
        votes_csv=VOTES + "1,,10,10,1\n2,,9,009,1\n3,,010,2,0\n",
        comments_csv=COMMENTS + "0,,9,100,0,0,0,a\n0,,10,100,0,0,0,b\n",
    )
    conversation = read_export(folder)
    assert conversation.participant_ids == ["2", "9", "10", "100"]
    assert [s.id for s in conversation.statements] == ["9", "10"]


def test_datetime_left_blank_means_no_real_timestamps(tmp_path):
    folder = small_export(tmp_path, datetime="")
    assert not read_export(folder).has_timestamps
    make_export(folder, votes_csv=VOTES + "3000,Thu Jan 01 00:00:03 UTC 1970,0,2,1\n")
    assert read_export(folder).has_timestamps
    make_export(folder, votes_csv="timestamp,comment-id,voter-id,vote\n3000,0,2,1\n")
    assert read_export(folder).has_timestamps


def test_vote_arrays_have_the_documented_dtypes():
    votes = read_export(FIXTURES / "london.youth.policing").votes
    assert votes.timestamp_ms.dtype == np.int64
    assert votes.participant.dtype == np.int32
    assert votes.statement.dtype == np.int32
    assert votes.vote.dtype == np.int8
    assert set(np.unique(votes.vote).tolist()) == {-1, 0, 1}


def test_of_two_votes_at_the_same_time_the_larger_counts_whatever_their_order(tmp_path):
    folder = make_export(
        tmp_path / "in",
        votes_csv=VOTES + "5,d,0,1,1\n5,d,0,1,-1\n",
        comments_csv=COMMENTS + "1,,0,1,0,0,1,x\n",
    )
    write_export(read_export(folder), tmp_path / "out")
    row = read_rows(tmp_path / "out" / "participants-votes.csv")[0]
    assert (row["0"], row["n-agree"], row["n-disagree"]) == ("1", "1", "0")
    votes = read_rows(tmp_path / "out" / "votes.csv")
    assert [v["vote"] for v in votes] == ["1", "-1"]  # time order is stable
