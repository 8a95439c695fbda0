"""The fast reader (column speed) gives exactly what the row reader gives, and its errors.

``read_export`` scans votes.csv and participants-votes.csv with a compiled kernel and, at the
first doubt, reads the export row by row; ``read_export(..., fast=False)`` is the row reader
alone, the reference here.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CONVERSATIONS, FIXTURES

from polis_like.conversation import Conversation
from polis_like.errors import InputError
from polis_like.io import _fast, read_export, write_export
from polis_like.io import read as rows

VOTES = "timestamp,datetime,comment-id,voter-id,vote\n"
COMMENTS = "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
MATRIX = "participant,group-id,n-comments,n-votes,n-agree,n-disagree,0,1\n"
GOOD_VOTES = VOTES + "1000,Thu Jan 01 00:00:01 UTC 1970,0,1,1\n2000,,1,2,-1\n2500,,1,01,0\n"
GOOD_COMMENTS = COMMENTS + '900,,0,1,1,0,1,"Body, with\nnewline"\n950,,1,2,0,1,1,Plain\n'
GOOD_MATRIX = MATRIX + "1,0,1,1,1,0,1,\n2,,1,1,0,1,,-1\n"


def assert_identical(a: Conversation, b: Conversation) -> None:
    """Every field equal, arrays with the same dtype, dicts in the same order."""
    assert a.summary == b.summary
    assert a.statements == b.statements
    assert a.participant_ids == b.participant_ids
    assert list(a.xids.items()) == list(b.xids.items())
    assert list(a.reference_groups.items()) == list(b.reference_groups.items())
    assert a.has_timestamps == b.has_timestamps
    for name in ("timestamp_ms", "participant", "statement", "vote"):
        x, y = getattr(a.votes, name), getattr(b.votes, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name


@pytest.fixture
def rows_forbidden(monkeypatch):
    """Fail if the row reader reads votes.csv or participants-votes.csv (the fast path must)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the row reader was used")

    monkeypatch.setattr(rows, "_read_votes", forbidden)
    monkeypatch.setattr(rows, "_read_matrix", forbidden)


def export(folder: Path, **files: str | bytes | None) -> Path:
    """A small valid export, some files replaced (``votes_csv="..."``) or left out (None)."""
    content: dict[str, str | bytes | None] = {
        "votes.csv": GOOD_VOTES,
        "comments.csv": GOOD_COMMENTS,
        "participants-votes.csv": GOOD_MATRIX,
        "summary.csv": "topic,T\n",
    }
    for key, value in files.items():
        content[key.replace("_csv", ".csv").replace("_", "-")] = value
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in content.items():
        if value is not None:
            (folder / name).write_bytes(value.encode() if isinstance(value, str) else value)
    return folder


def outcome(path: Path, fast: bool) -> Conversation | tuple[str, str | None, int | None]:
    try:
        return read_export(path, fast=fast)
    except InputError as error:
        return (error.message, error.path, error.line)


def assert_same_outcome(path: Path) -> None:
    fast, slow = outcome(path, True), outcome(path, False)
    if isinstance(slow, Conversation):
        assert isinstance(fast, Conversation), fast
        assert_identical(fast, slow)
    else:
        assert fast == slow


# Real exports: the fast path reads them, identically


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_fast_reader_gives_the_row_readers_conversation_for_every_fixture(name):
    reference = read_export(FIXTURES / name, fast=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rows, "_read_votes", None)  # the fast path must not need it
        patch.setattr(rows, "_read_matrix", None)
        fast = read_export(FIXTURES / name)
    assert_identical(fast, reference)


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_fast_reader_reads_participants_votes_alone_like_the_row_reader(name, tmp_path):
    folder = tmp_path / name
    folder.mkdir()
    for file in ("participants-votes.csv", "comments.csv", "summary.csv"):
        shutil.copy(FIXTURES / name / file, folder / file)
    reference = read_export(folder, fast=False)
    (folder / "comments.csv").unlink()
    without_comments = read_export(folder, fast=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rows, "_read_votes", None)
        patch.setattr(rows, "_read_matrix", None)
        assert_identical(read_export(folder), without_comments)
        shutil.copy(FIXTURES / name / "comments.csv", folder / "comments.csv")
        assert_identical(read_export(folder), reference)


def test_fast_reader_reads_what_the_writer_wrote_in_a_zip(tmp_path, rows_forbidden):
    conversation = read_export(FIXTURES / "vtaiwan.uberx")
    conversation.xids = {pid: f"user-{pid}-é" for pid in conversation.participant_ids[::7]}
    write_export(conversation, tmp_path / "out")
    archive = tmp_path / "out.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in (tmp_path / "out").iterdir():
            zf.write(file, f"conv/{file.name}")
    fast = read_export(archive)
    assert fast.xids == {pid: x for pid, x in conversation.xids.items() if x}


def test_written_export_reads_the_same_both_ways(tmp_path):
    conversation = read_export(FIXTURES / "football-concussions")
    conversation.xids = {"3": "with, a comma", "10": "ten"}
    write_export(conversation, tmp_path)
    assert_same_outcome(tmp_path)


# Odd but valid files: the same Conversation (the fast path may or may not take them)

ODD = {
    "crlf": dict(votes_csv=GOOD_VOTES.replace("\n", "\r\n")),
    "crlf matrix": dict(participants_votes_csv=GOOD_MATRIX.replace("\n", "\r\n")),
    "bom": dict(votes_csv="\ufeff" + GOOD_VOTES, participants_votes_csv="\ufeff" + GOOD_MATRIX),
    "blank lines": dict(votes_csv=VOTES + "\n1000,,0,1,1\n\n\r\n2000,,1,2,-1\n\n"),
    "leading blank line": dict(votes_csv="\n" + GOOD_VOTES),
    "no final line end": dict(
        votes_csv=GOOD_VOTES.rstrip("\n"), participants_votes_csv=GOOD_MATRIX.rstrip("\n")
    ),
    "leading zeros": dict(votes_csv=VOTES + "1000,,000,0001,+1\n2000,,01,0002,-0\n"),
    "signed timestamps": dict(votes_csv=VOTES + "-5,,0,1,1\n+7,,1,2,+0\n"),
    "quoted fields": dict(votes_csv=VOTES + '"1000",,"0",1,"1"\n'),
    "quoted header": dict(votes_csv='"timestamp",datetime,comment-id,voter-id,vote\n1,,0,1,1\n'),
    "columns in another order": dict(
        votes_csv="vote,voter-id,note,comment-id,timestamp\n-1,7,hi there,1,5\n"
    ),
    "no datetime column": dict(votes_csv="timestamp,comment-id,voter-id,vote\n5,1,7,1\n"),
    "blank datetimes": dict(votes_csv=VOTES + "1000,,0,1,1\n"),
    "header with spaces": dict(
        votes_csv=" timestamp , datetime,comment-id ,voter-id,vote\n1,,0,1,1\n"
    ),
    "non-ASCII text": dict(votes_csv=VOTES + "1000,jeudi 1 janvier 1970 à 00:00,0,1,1\n"),
    "tab in text": dict(votes_csv=VOTES + "1000,a\tb,0,1,1\n"),
    "no votes": dict(votes_csv=VOTES),
    "huge ids": dict(votes_csv=VOTES + "1000,,0,99999999999999999999,1\n"),
    "id at 2**31": dict(votes_csv=VOTES + "1000,,0,2147483648,1\n1000,,0,2147483647,1\n"),
    "matrix with xid": dict(
        participants_votes_csv="participant,xid,group-id,n-votes,0,1\n1,alice,0,1,1,\n2,,,1,,-1\n"
    ),
    "matrix with group -3": dict(participants_votes_csv=MATRIX + "1,-3,1,1,1,0\n"),
    "matrix cells +1 and -0": dict(participants_votes_csv=MATRIX + "1,,1,1,+1,-0\n"),
    "huge group id": dict(participants_votes_csv=MATRIX + "1,1234567890123456789012,1,1,1,\n"),
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_but_valid_files_read_the_same_both_ways(case, tmp_path):
    assert_same_outcome(export(tmp_path, **ODD[case]))


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_files_read_from_participants_votes_alone_the_same_both_ways(case, tmp_path):
    files = dict(ODD[case])
    files["votes_csv"] = None
    assert_same_outcome(export(tmp_path, **files))


def test_crlf_bom_and_blank_lines_stay_on_the_fast_path(tmp_path, rows_forbidden):
    votes = "\ufeff" + VOTES.replace("\n", "\r\n") + "1000,,0,1,1\r\n\r\n\n2000,,1,2,-1"
    conversation = read_export(export(tmp_path, votes_csv=votes))
    assert conversation.participant_ids == ["1", "2"]
    assert conversation.votes.vote.tolist() == [1, -1]


# Bad files: the row reader's exact error (message, file, line)

BAD = {
    "bad vote": dict(votes_csv=GOOD_VOTES + "3000,,0,1,2\n"),
    "blank vote": dict(votes_csv=GOOD_VOTES + "3000,,0,1,\n"),
    "spaced vote": dict(votes_csv=GOOD_VOTES + "3000,,0,1, 1\n"),
    "vote 11": dict(votes_csv=GOOD_VOTES + "3000,,0,1,11\n"),
    "vote --1": dict(votes_csv=GOOD_VOTES + "3000,,0,1,--1\n"),
    "timestamp 12.5": dict(votes_csv=GOOD_VOTES + "12.5,,0,1,1\n"),
    "timestamp blank": dict(votes_csv=GOOD_VOTES + ",,0,1,1\n"),
    "timestamp sign only": dict(votes_csv=GOOD_VOTES + "-,,0,1,1\n"),
    "negative voter": dict(votes_csv=GOOD_VOTES + "3000,,0,-3,1\n"),
    "voter x7": dict(votes_csv=GOOD_VOTES + "3000,,0,x7,1\n"),
    "comment unknown": dict(votes_csv=GOOD_VOTES + "3000,,42,1,1\n"),
    "too few fields": dict(votes_csv=GOOD_VOTES + "3000,,1,1\n"),
    "too many fields": dict(votes_csv=GOOD_VOTES + "3000,,1,1,1,1\n"),
    "trailing comma": dict(votes_csv=GOOD_VOTES + "3000,,1,1,1,\n"),
    "spaces line": dict(votes_csv=GOOD_VOTES + "   \n"),
    "lone CR": dict(votes_csv=GOOD_VOTES + "3000,,1,1,1\r4000,,1,2,x\n"),
    "text after quote": dict(votes_csv=GOOD_VOTES + '3000,"x"y,0,1,1\n'),
    "unclosed quote": dict(votes_csv=GOOD_VOTES + '3000,"x,0,1,1\n5,,0,1,1\n'),
    "quoted bad vote": dict(votes_csv=GOOD_VOTES + '3000,"a\nb",0,1,"7"\n'),
    "NUL": dict(votes_csv=GOOD_VOTES + "3000,a\x00b,0,1,x\n"),
    "latin-1": dict(votes_csv=GOOD_VOTES.encode() + "3000,café,0,1,1\n".encode("latin-1")),
    "utf-16": dict(votes_csv=GOOD_VOTES.encode("utf-16")),
    "empty": dict(votes_csv=""),
    "header only blank": dict(votes_csv="\n\n"),
    "missing column": dict(votes_csv="timestamp,datetime,comment-id,vote\n1,,0,1\n"),
    "duplicate column": dict(votes_csv="timestamp,vote,comment-id,voter-id,vote\n1,1,0,1,1\n"),
    "long field": dict(votes_csv=GOOD_VOTES + "3000," + "x" * 200_000 + ",0,1,1\n"),
    "long zero id": dict(votes_csv=GOOD_VOTES + "3000,,0," + "0" * 200_000 + "1,1\n"),
    "no comments file": dict(comments_csv=None),
    "matrix bad cell": dict(participants_votes_csv=GOOD_MATRIX + "3,,0,0,0,0,2,\n"),
    "matrix word cell": dict(participants_votes_csv=GOOD_MATRIX + "3,,0,0,0,0,x,\n"),
    "matrix twice": dict(participants_votes_csv=GOOD_MATRIX + "1,,0,0,0,0,,\n"),
    "matrix bad group": dict(participants_votes_csv=GOOD_MATRIX + "3,zero,0,0,0,0,,\n"),
    "matrix bad count": dict(participants_votes_csv=GOOD_MATRIX + "3,,0,lots,0,0,,\n"),
    "matrix blank count": dict(participants_votes_csv=GOOD_MATRIX + "3,,0,,0,0,,\n"),
    "matrix participant p3": dict(participants_votes_csv=GOOD_MATRIX + "p3,,0,0,0,0,,\n"),
    "matrix unknown column": dict(participants_votes_csv=MATRIX.replace(",1\n", ",7\n")),
    "matrix column twice": dict(participants_votes_csv=MATRIX.replace(",1\n", ",00\n")),
    "matrix short row": dict(participants_votes_csv=GOOD_MATRIX + "3,,0,0,0,0,\n"),
    "matrix and votes both bad": dict(
        participants_votes_csv=GOOD_MATRIX + "3,,0,0,0,0,5,\n", votes_csv=GOOD_VOTES + "x\n"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_give_the_row_readers_exact_error(case, tmp_path):
    folder = export(tmp_path, **BAD[case])
    with pytest.raises(InputError) as fast:
        read_export(folder)
    with pytest.raises(InputError) as slow:
        read_export(folder, fast=False)
    assert (fast.value.message, fast.value.path, fast.value.line) == (
        slow.value.message,
        slow.value.path,
        slow.value.line,
    )


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_in_participants_votes_alone_give_the_row_readers_exact_error(case, tmp_path):
    files = dict(BAD[case])
    files["votes_csv"] = None
    assert_same_outcome(export(tmp_path, **files))


def _many_votes(n: int) -> str:
    lines = [
        f"{1000 + i},Thu Jan 01 00:00:01 UTC 1970,{i % 2},{i % 997},{i % 3 - 1}" for i in range(n)
    ]
    return VOTES + "\n".join(lines) + "\n"


def _zipped(folder: Path) -> Path:
    path = folder.with_suffix(".zip")
    with zipfile.ZipFile(path, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"conv/{file.name}")
    return path


@pytest.fixture
def small_batches(monkeypatch):
    """Many pieces (lines cut across them in a .zip) and many scan calls."""
    monkeypatch.setattr(_fast, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(_fast, "_ROW_BATCH", 100)
    monkeypatch.setattr(_fast, "_CELL_BATCH", 1)


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("where", ["first piece", "across pieces", "last line"])
def test_a_bad_vote_at_a_large_line_number_is_named_at_its_line(
    where, packed, tmp_path, small_batches
):
    votes = _many_votes(20_000).splitlines(keepends=True)
    at = {"first piece": 10, "across pieces": 12_345, "last line": len(votes) - 1}[where]
    votes[at] = votes[at].replace(",1\n", ",yes\n").replace(",0\n", ",yes\n")
    votes[at] = votes[at].replace(",-1\n", ",yes\n")
    path = export(tmp_path / "export", votes_csv="".join(votes))
    if packed:
        path = _zipped(path)
    with pytest.raises(InputError) as caught:
        read_export(path)
    folder = path / "conv" if packed else path
    assert (caught.value.path, caught.value.line) == (str(folder / "votes.csv"), at + 1)
    assert "vote 'yes'" in caught.value.message


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_small_pieces_give_the_same_conversation(packed, tmp_path, small_batches, monkeypatch):
    folder = export(tmp_path / "export", votes_csv=_many_votes(5_000).replace("\n", "\r\n"))
    reference = read_export(folder, fast=False)
    written = tmp_path / "written"
    conversation = read_export(FIXTURES / "vtaiwan.uberx")
    conversation.xids = {pid: f"x-{pid}-é" for pid in conversation.participant_ids[::5]}
    write_export(conversation, written)
    (written / "votes.csv").unlink()
    matrix_only = _zipped(written) if packed else written
    matrix_reference = read_export(matrix_only, fast=False)
    assert len(matrix_reference.xids) > 300
    monkeypatch.setattr(rows, "_read_votes", None)  # the fast path reads them all
    monkeypatch.setattr(rows, "_read_matrix", None)
    assert_identical(read_export(_zipped(folder) if packed else folder), reference)
    assert_identical(read_export(matrix_only), matrix_reference)


def test_a_bad_file_in_a_zip_is_named_inside_the_zip(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("conv/votes.csv", _many_votes(3000) + "1000,,0,1,maybe\n")
        zf.writestr("conv/comments.csv", GOOD_COMMENTS)
    with pytest.raises(InputError) as caught:
        read_export(path)
    assert (caught.value.path, caught.value.line) == (str(path / "conv" / "votes.csv"), 3002)
