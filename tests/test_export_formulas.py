"""CSV exports carry no spreadsheet formulas (CSV injection), unless asked for the exact files.

Every test runs on SQLite and on PostgreSQL, on a conversation whose participants wrote texts
that a spreadsheet would run: the default export puts a ``'`` before them (OWASP's advice),
``--exact`` and ``?exact=1`` give them as stored, and numbers such as a -1 vote never change.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from polis_like.conversation import Conversation, Moderation, VoteEvents
from polis_like.conversation import Statement as ExportStatement
from polis_like.io import read_export
from polis_like.storage.transfer import export_conversation, import_conversation, import_export

API = "/api/v1"
#: Statement texts by the character that makes a spreadsheet read them as a formula.
FORMULAS = {
    "=": '=HYPERLINK("http://evil.example","click")',
    "+": "+cmd|' /C calc'!A0",
    "-": "-2+3",
    "@": "@SUM(1+1)",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}
NORMAL = "Buses should run all night"
TEXTS = [*FORMULAS.values(), NORMAL]
XIDS = {"0": "=cmd|' /C calc'!A0", "1": "user-1"}
SUMMARY = {"topic": "=SUM(A1:A9)", "conversation-description": "@night buses", "url": "+33"}


def hostile() -> Conversation:
    """Three participants: 0 disagrees with everything, 1 agrees, 2 passes; 0 wrote them all."""
    n = len(TEXTS)
    statements = [
        ExportStatement(
            id=str(i),
            text=text,
            author_id="0",
            created_ms=1_700_000_000_000 + i,
            moderation=Moderation.ACCEPTED,
        )
        for i, text in enumerate(TEXTS)
    ]
    return Conversation(
        summary={**SUMMARY, "views": "12"},
        statements=statements,
        participant_ids=["0", "1", "2"],
        xids=dict(XIDS),
        votes=VoteEvents(
            np.arange(3 * n, dtype=np.int64) + 1_700_000_001_000,
            np.repeat(np.arange(3, dtype=np.int32), n),
            np.tile(np.arange(n, dtype=np.int32), 3),
            np.repeat(np.array([-1, 1, 0], dtype=np.int8), n),
        ),
    )


@pytest.fixture
def conversation_id(sessions) -> int:
    return import_conversation(sessions, hostile())


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def summary_of(data: bytes) -> dict[str, str]:
    return dict(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def read_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def assert_defused(files: dict[str, bytes]) -> None:
    """Formula-like texts start with ``'``, other texts and every number are as stored."""
    bodies = [row["comment-body"] for row in rows(files["comments.csv"])]
    assert bodies == ["'" + text for text in FORMULAS.values()] + [NORMAL]
    assert [row["disagrees"] for row in rows(files["comments.csv"])] == ["1"] * len(TEXTS)

    matrix = rows(files["participants-votes.csv"])
    assert [row["xid"] for row in matrix] == ["'" + XIDS["0"], XIDS["1"], ""]
    cells = [[row[str(i)] for i in range(len(TEXTS))] for row in matrix]
    assert cells == [["-1"] * len(TEXTS), ["1"] * len(TEXTS), ["0"] * len(TEXTS)]

    assert {row["vote"] for row in rows(files["votes.csv"])} == {"-1", "0", "1"}

    summary = summary_of(files["summary.csv"])
    assert summary["topic"] == "'" + SUMMARY["topic"]
    assert summary["conversation-description"] == "'" + SUMMARY["conversation-description"]
    assert summary["url"] == "'" + SUMMARY["url"]
    assert summary["views"] == "12"


def assert_exact(files: dict[str, bytes]) -> None:
    """Every text byte for byte as stored."""
    assert [row["comment-body"] for row in rows(files["comments.csv"])] == TEXTS
    matrix = rows(files["participants-votes.csv"])
    assert [row["xid"] for row in matrix] == [XIDS["0"], XIDS["1"], ""]
    summary = summary_of(files["summary.csv"])
    assert {key: summary[key] for key in SUMMARY} == SUMMARY


# -- command line --------------------------------------------------------------------------


def test_cli_export_puts_a_quote_before_formulas_and_leaves_votes_alone(
    cli, database_url, conversation_id, tmp_path
):
    out = tmp_path / "out"
    assert cli(["export", str(conversation_id), str(out), "--database-url", database_url]) == 0
    assert_defused(read_files(out))


def test_cli_export_exact_writes_the_texts_as_stored(cli, database_url, conversation_id, tmp_path):
    out = tmp_path / "out"
    argv = ["export", str(conversation_id), str(out), "--exact", "--database-url", database_url]
    assert cli(argv) == 0
    assert_exact(read_files(out))
    read_back = read_export(out)
    assert [s.text for s in read_back.statements] == TEXTS
    assert read_back.xids == XIDS


def test_an_exact_export_moves_the_texts_unchanged_and_a_default_one_keeps_its_quotes(
    cli, database_url, conversation_id, sessions, tmp_path
):
    for flags in ([], ["--exact"]):
        out = tmp_path / ("exact" if flags else "default")
        argv = ["export", str(conversation_id), str(out), *flags, "--database-url", database_url]
        assert cli(argv) == 0
    moved = import_export(sessions, tmp_path / "exact")
    quoted = import_export(sessions, tmp_path / "default")
    with sessions() as session:
        assert [s.text for s in export_conversation(session, moved)[0].statements] == TEXTS
        texts = [s.text for s in export_conversation(session, quoted)[0].statements]
    # The importer reads files as they are: the quote is visible, never silently dropped.
    assert texts == ["'" + text for text in FORMULAS.values()] + [NORMAL]


# -- API -----------------------------------------------------------------------------------


def test_api_export_files_and_zip_are_defused_by_default(client, staff, conversation_id):
    base = f"{API}/conversations/{conversation_id}/export"
    files = {}
    for name in ("votes.csv", "comments.csv", "participants-votes.csv", "summary.csv"):
        response = client.get(f"{base}/{name}", headers=staff["admin"])
        assert response.status_code == 200, response.json
        files[name] = response.data
    assert_defused(files)
    response = client.get(f"{base}.zip?exact=0", headers=staff["admin"])
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert_defused({name: archive.read(name) for name in archive.namelist()})


@pytest.mark.parametrize("value", ["1", "true"])
def test_api_export_exact_gives_the_texts_as_stored(client, staff, conversation_id, value):
    base = f"{API}/conversations/{conversation_id}/export"
    files = {
        name: client.get(f"{base}/{name}?exact={value}", headers=staff["admin"]).data
        for name in ("comments.csv", "participants-votes.csv", "summary.csv")
    }
    assert_exact(files)
    response = client.get(f"{base}.zip?exact={value}", headers=staff["admin"])
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert_exact({name: archive.read(name) for name in archive.namelist()})


@pytest.mark.parametrize("value", ["yes", "", "2", "TRUE"])
def test_api_export_with_a_bad_exact_value_is_a_400(client, staff, conversation_id, value):
    for path in ("export/comments.csv", "export.zip"):
        response = client.get(
            f"{API}/conversations/{conversation_id}/{path}?exact={value}",
            headers=staff["admin"],
        )
        assert response.status_code == 400, path
        assert response.is_json
        assert response.json["error"]["status"] == 400
        assert "exact must be 1, 0, true or false" in response.json["error"]["message"]


def test_a_statement_a_participant_writes_is_exported_defused(app, client, staff):
    body = {"topic": "Night buses", "seed_statements": [NORMAL], "moderation": "open"}
    cid = client.post(f"{API}/conversations", json=body, headers=staff["admin"]).json["id"]
    participant = app.test_client()
    text = FORMULAS["="]
    response = participant.post(f"{API}/conversations/{cid}/statements", json={"text": text})
    assert response.status_code == 201, response.json
    participant.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": -1})

    comments = client.get(f"{API}/conversations/{cid}/export/comments.csv", headers=staff["admin"])
    assert [row["comment-body"] for row in rows(comments.data)] == [NORMAL, "'" + text]
    votes = client.get(f"{API}/conversations/{cid}/export/votes.csv", headers=staff["admin"])
    assert "-1" in [row["vote"] for row in rows(votes.data)]
