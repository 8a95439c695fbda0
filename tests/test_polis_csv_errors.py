"""Bad Pol.is exports: every failure is an InputError naming the file and the line it starts on."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from polis_like.conversation import Conversation, Statement, VoteEvents
from polis_like.errors import InputError
from polis_like.io import read_export, write_export

VOTES = "timestamp,datetime,comment-id,voter-id,vote\n"
COMMENTS = "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
MATRIX = "participant,group-id,n-comments,n-votes,n-agree,n-disagree,0,1\n"
GOOD_VOTES = VOTES + "1000,,0,1,1\n2000,,1,2,-1\n"
GOOD_COMMENTS = COMMENTS + '900,,0,1,1,0,1,"Body, with\nnewline"\n950,,1,2,0,1,1,Plain\n'
GOOD_MATRIX = MATRIX + "1,0,1,1,1,0,1,\n2,,1,1,0,1,,-1\n"
GOOD_SUMMARY = 'topic,T\nvoters,2\nconversation-description,"two\nlines"\n'


def export(folder: Path, **files: str | bytes) -> Path:
    """A valid export, some files replaced (``votes_csv="..."``) or removed (``votes_csv=None``)."""
    content = {
        "votes.csv": GOOD_VOTES,
        "comments.csv": GOOD_COMMENTS,
        "participants-votes.csv": GOOD_MATRIX,
        "summary.csv": GOOD_SUMMARY,
    }
    for key, value in files.items():
        content[key.replace("_csv", ".csv").replace("_", "-")] = value
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in content.items():
        if value is not None:
            (folder / name).write_bytes(value.encode("utf-8") if isinstance(value, str) else value)
    return folder


def read_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        read_export(path)
    return caught.value


def test_valid_base_export_reads(tmp_path):
    conversation = read_export(export(tmp_path))
    assert len(conversation.votes) == 2
    assert conversation.summary["conversation-description"] == "two\nlines"


# Where the export is


def test_missing_folder_is_named(tmp_path):
    error = read_error(tmp_path / "nowhere")
    assert (error.path, error.line) == (str(tmp_path / "nowhere"), None)


def test_a_plain_file_is_neither_folder_nor_zip(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text(GOOD_VOTES, encoding="utf-8")
    error = read_error(path)
    assert (error.path, error.line) == (str(path), None)
    assert "not a folder or a .zip" in error.message


def test_a_corrupt_zip_is_neither_folder_nor_zip(tmp_path):
    path = tmp_path / "export.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert read_error(path).path == str(path)


def test_folder_without_votes_or_participants_votes_is_refused(tmp_path):
    folder = export(tmp_path, votes_csv=None, participants_votes_csv=None)
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder), None)
    assert "votes.csv" in error.message and "participants-votes.csv" in error.message


def test_votes_without_comments_names_the_missing_comments_file(tmp_path):
    folder = export(tmp_path, comments_csv=None)
    error = read_error(folder)
    assert error.path == str(folder / "comments.csv")


def test_zip_holding_two_exports_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/votes.csv", GOOD_VOTES)
        zf.writestr("b/participants-votes.csv", GOOD_MATRIX)
    error = read_error(path)
    assert error.path == str(path)
    assert "a, b" in error.message


def test_error_inside_a_zip_names_the_member(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("conv/votes.csv", VOTES + "1000,,0,1,yes\n")
        zf.writestr("conv/comments.csv", GOOD_COMMENTS)
    error = read_error(path)
    assert (error.path, error.line) == (str(path / "conv" / "votes.csv"), 2)


# Headers and shape


@pytest.mark.parametrize(
    ("file", "content", "column"),
    [
        ("votes.csv", "timestamp,datetime,comment-id,vote\n1,,0,1\n", "voter-id"),
        ("comments.csv", "timestamp,comment-id,author-id,moderated\n1,0,1,1\n", "comment-body"),
        ("participants-votes.csv", "participant,n-votes,0\n1,1,1\n", "group-id"),
    ],
)
def test_missing_required_column_is_named(tmp_path, file, content, column):
    folder = export(tmp_path, **{file.replace(".csv", "_csv").replace("-", "_"): content})
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / file), 1)
    assert column in error.message


@pytest.mark.parametrize(
    "file", ["votes.csv", "comments.csv", "participants-votes.csv", "summary.csv"]
)
def test_empty_file_is_refused(tmp_path, file):
    folder = export(tmp_path, **{file.replace(".csv", "_csv").replace("-", "_"): b""})
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / file), 1)
    assert "empty" in error.message


def test_row_with_too_many_fields_is_found_after_a_multiline_body(tmp_path):
    comments = COMMENTS + '1,,0,1,0,0,1,"line one\nline two\nline three"\n2,,1,1,0,0,1,ok,extra\n'
    folder = export(tmp_path, comments_csv=comments)
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "comments.csv"), 5)
    assert "9 fields" in error.message


def test_row_with_too_few_fields_is_refused(tmp_path):
    folder = export(tmp_path, votes_csv=GOOD_VOTES + "3000,,1,1\n")
    assert (read_error(folder).line, read_error(folder).path) == (4, str(folder / "votes.csv"))


def test_unterminated_quote_is_reported_where_the_record_starts(tmp_path):
    folder = export(tmp_path, comments_csv=GOOD_COMMENTS + '3,,1,1,0,0,1,"never closed\nmore\n')
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "comments.csv"), 5)


def test_text_after_a_closing_quote_is_malformed(tmp_path):
    folder = export(tmp_path, votes_csv=VOTES + '1000,"x"y,0,1,1\n')
    assert read_error(folder).line == 2


def test_duplicate_header_column_is_refused(tmp_path):
    folder = export(tmp_path, votes_csv="timestamp,vote,comment-id,voter-id,vote\n1,1,0,1,1\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 1)


# Values


@pytest.mark.parametrize(
    ("row", "word"),
    [
        ("abc,,0,1,1", "timestamp"),
        ("12.5,,0,1,1", "timestamp"),
        ("1000,,0,x7,1", "voter-id"),
        ("1000,,0,-3,1", "voter-id"),
        ("1000,,c0,1,1", "comment-id"),
        ("1000,,0,1,yes", "vote"),
        ("1000,,0,1, 1", "vote"),
        ("1000,,0,1,", "vote"),
    ],
)
def test_non_integer_value_in_votes_is_refused(tmp_path, row, word):
    folder = export(tmp_path, votes_csv=GOOD_VOTES + row + "\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 4)
    assert word in error.message


HUGE = "9" * 5000  # past Python's 4,300-digit limit on int(str)


@pytest.mark.parametrize(
    ("row", "word"),
    [
        (f"{HUGE},,0,1,1", "timestamp"),
        ("9223372036854775808,,0,1,1", "timestamp"),  # 2**63: one past int64
        ("-9223372036854775809,,0,1,1", "timestamp"),
        (f"1000,,0,1,{HUGE}", "vote"),
    ],
)
def test_integer_too_large_is_refused_on_one_line(tmp_path, row, word):
    folder = export(tmp_path, votes_csv=GOOD_VOTES + row + "\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 4)
    assert word in error.message
    assert "\n" not in str(error) and len(str(error)) < len(str(folder)) + 200


def test_largest_int64_timestamp_is_read(tmp_path):
    votes = VOTES + "-9223372036854775808,,0,1,1\n9223372036854775807,,1,2,-1\n"
    conversation = read_export(export(tmp_path, votes_csv=votes))
    assert sorted(conversation.votes.timestamp_ms.tolist()) == [-(2**63), 2**63 - 1]


def test_ids_of_any_length_read_in_numeric_order(tmp_path):
    # The reader takes any non-negative integer id (their range is the storage's to check); a
    # 5,000-digit one must not stop on Python's limit on int(str).
    votes = GOOD_VOTES + f"3000,,0,{HUGE},1\n4000,,1,0{HUGE},1\n5000,,1,10,1\n"
    conversation = read_export(export(tmp_path, votes_csv=votes, participants_votes_csv=None))
    assert conversation.participant_ids == ["1", "2", "10", HUGE]


@pytest.mark.parametrize(
    ("row", "word"),
    [(f"3,{HUGE},0,0,0,0,,", "group-id"), (f"3,,0,{HUGE},0,0,,", "n-votes")],
)
def test_integer_too_large_in_participants_votes_is_refused(tmp_path, row, word):
    folder = export(tmp_path, participants_votes_csv=GOOD_MATRIX + row + "\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "participants-votes.csv"), 4)
    assert word in error.message


@pytest.mark.parametrize("vote", ["2", "-2", "10"])
def test_vote_outside_minus_one_to_one_is_refused(tmp_path, vote):
    folder = export(tmp_path, votes_csv=VOTES + f"1000,,0,1,{vote}\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 2)
    assert "not -1, 0 or 1" in error.message


def test_vote_on_a_comment_missing_from_comments_names_votes_and_line(tmp_path):
    folder = export(tmp_path, votes_csv=GOOD_VOTES + "3000,,42,1,1\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 4)
    assert "42" in error.message


@pytest.mark.parametrize(
    ("moderated", "word"), [("2", "-1, 0 or 1"), ("yes", "integer"), ("", "integer")]
)
def test_moderated_outside_minus_one_to_one_is_refused(tmp_path, moderated, word):
    folder = export(tmp_path, comments_csv=GOOD_COMMENTS + f"3,,2,1,0,0,{moderated},Bad\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "comments.csv"), 5)
    assert "moderated" in error.message and word in error.message


@pytest.mark.parametrize(
    "row", ["3,,2,1,many,0,1,x", "3,,2,a1,0,0,1,x", "x,,2,1,0,0,1,x", "3,,1,1,0,0,1,duplicate id"]
)
def test_bad_comment_rows_are_refused(tmp_path, row):
    folder = export(tmp_path, comments_csv=GOOD_COMMENTS + row + "\n")
    assert (read_error(folder).path, read_error(folder).line) == (str(folder / "comments.csv"), 5)


def test_is_meta_must_be_a_yes_or_no(tmp_path):
    comments = COMMENTS.replace("\n", ",is-meta\n") + "1,,0,1,0,0,1,x,maybe\n"
    folder = export(tmp_path, comments_csv=comments)
    assert (read_error(folder).path, read_error(folder).line) == (str(folder / "comments.csv"), 2)


@pytest.mark.parametrize(
    ("row", "word"),
    [
        ("3,zero,0,0,0,0,,", "group-id"),
        ("3,,0,0,0,0,,x", "comment-id 1"),
        ("3,,0,0,0,0,,5", "comment-id 1"),
        ("3,,0,lots,0,0,,", "n-votes"),
        ("1,,0,0,0,0,,", "appears twice"),
        ("p3,,0,0,0,0,,", "participant"),
    ],
)
def test_bad_participants_votes_rows_are_refused(tmp_path, row, word):
    folder = export(tmp_path, participants_votes_csv=GOOD_MATRIX + row + "\n")
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "participants-votes.csv"), 4)
    assert word in error.message


def test_participants_votes_column_for_an_unknown_comment_is_refused(tmp_path):
    matrix = MATRIX.replace(",1\n", ",7\n") + "1,,0,1,1,0,1,\n"
    folder = export(tmp_path, participants_votes_csv=matrix)
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "participants-votes.csv"), 1)
    assert "7" in error.message


def test_bad_cell_in_participants_votes_only_input_is_refused(tmp_path):
    matrix = GOOD_MATRIX + "3,,0,0,0,0,2,\n"
    folder = export(tmp_path, votes_csv=None, participants_votes_csv=matrix)
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "participants-votes.csv"), 4)


@pytest.mark.parametrize(
    ("summary", "line"),
    [
        ("topic,T\nvoters,lots\n", 2),
        ('topic,T\nconversation-description,"a\nb"\ngroups,2.5\n', 4),
        ("topic,T,extra\n", 1),
        ("topic,T\nviews\n", 2),
        ("topic,T\ntopic,U\n", 2),
    ],
)
def test_bad_summary_rows_are_refused(tmp_path, summary, line):
    folder = export(tmp_path, summary_csv=summary)
    assert (read_error(folder).path, read_error(folder).line) == (str(folder / "summary.csv"), line)


def test_summary_free_text_need_not_be_numeric(tmp_path):
    folder = export(tmp_path, summary_csv="topic,123 is fine\nurl,\nviews,\nmood,sunny\n")
    expected = {"topic": "123 is fine", "url": "", "views": "", "mood": "sunny"}
    assert read_export(folder).summary == expected


# Encoding


def test_file_that_is_not_utf8_is_refused_at_the_bad_line(tmp_path):
    comments = (COMMENTS + "1,,0,1,0,0,1,fine\n").encode("utf-8")
    comments += "2,,1,1,0,0,1,café\n".encode("latin-1")
    folder = export(tmp_path, comments_csv=comments)
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "comments.csv"), 3)
    assert "UTF-8" in error.message


def test_utf16_file_is_refused_as_not_utf8(tmp_path):
    folder = export(tmp_path, votes_csv=GOOD_VOTES.encode("utf-16"))
    error = read_error(folder)
    assert (error.path, error.line) == (str(folder / "votes.csv"), 1)


# Nothing else escapes


def test_mangled_exports_raise_only_input_errors(tmp_path):
    """Random byte edits of a valid export either read or raise InputError, never anything raw."""
    rng = random.Random(20240601)
    originals = {
        "votes.csv": GOOD_VOTES.encode(),
        "comments.csv": GOOD_COMMENTS.encode(),
        "participants-votes.csv": GOOD_MATRIX.encode(),
        "summary.csv": GOOD_SUMMARY.encode(),
    }
    alphabet = b',"\n\r-+0129x\xc3\xa9\xff\x00 '
    outcomes = set()
    unlocated = []  # errors that do not say which file is wrong
    for trial in range(300):
        files = dict(originals)
        name = rng.choice(sorted(files))
        data = bytearray(files[name])
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.4 and data:
                del data[min(at, len(data) - 1)]
            elif action < 0.8:
                data.insert(at, rng.choice(alphabet))
            else:
                data[at:at] = bytes([rng.choice(alphabet)]) * rng.randint(1, 3)
        files[name] = bytes(data)
        arguments = {k.replace(".csv", "_csv").replace("-", "_"): v for k, v in files.items()}
        folder = export(tmp_path / str(trial), **arguments)
        try:
            read_export(folder)
        except InputError as error:
            outcomes.add("error")
            if error.path is None:
                unlocated.append((trial, str(error)))
        else:
            outcomes.add("read")
    assert outcomes == {"read", "error"}
    assert unlocated == []


# Writing


def test_writer_refuses_ids_polis_cannot_hold(tmp_path):
    conversation = Conversation(
        statements=[Statement("s1", "text")],
        participant_ids=["alice"],
        votes=VoteEvents([1], [0], [0], [1]),
    )
    with pytest.raises(InputError) as caught:
        write_export(conversation, tmp_path)
    assert caught.value.path == str(tmp_path)
