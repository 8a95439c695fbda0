"""Hostile input on SQLite and PostgreSQL: every request an attacker can make gets a 4xx JSON
error (never a 500) and stores nothing; the command line's import and export errors are one line
with exit status 2."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import tracemalloc
import zipfile
import zlib

import pytest
from conftest import FIXTURES
from sqlalchemy import func, select

from polis_like.storage import models

API = "/api/v1"
SMALL = "brexit-consensus"
HUGE_IDS = [2**31, 2**63, 2**64, -1, "9" * 5000]


def make_conversation(client, headers) -> int:
    body = {"topic": "Ride sharing", "seed_statements": ["one", "two", "three"]}
    response = client.post(f"{API}/conversations", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["error"]["status"] == status
    return response.json["error"]["message"]


def raw_json(client, method: str, url: str, text: str, **kwargs):
    """Send ``text`` as the JSON body as it is (json= would refuse or escape what we test)."""
    return client.open(
        url,
        method=method,
        data=text.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        **kwargs,
    )


def count(sessions, row) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(row))


@pytest.fixture
def conversation(client, staff) -> int:
    """A conversation with a participant (pid 0) who has voted."""
    cid = make_conversation(client, staff["admin"])
    response = client.post(f"{API}/conversations/{cid}/votes", json={"statement_id": 0, "vote": 1})
    assert response.status_code == 200, response.json
    return cid


# -- 1. ids --------------------------------------------------------------------------------


def path_routes(cid, sid, pid) -> list[tuple[str, str]]:
    """Every route with an id in its path, with ``cid``, ``sid`` and ``pid`` filled in."""
    base = f"{API}/conversations/{cid}"
    return [
        ("GET", base),
        ("PATCH", base),
        ("GET", f"{base}/next"),
        ("POST", f"{base}/votes"),
        ("GET", f"{base}/statements"),
        ("POST", f"{base}/statements"),
        ("GET", f"{base}/statements/{sid}"),
        ("PATCH", f"{base}/statements/{sid}"),
        ("POST", f"{base}/moderation"),
        ("GET", f"{base}/moderation/log"),
        ("PUT", f"{base}/participants/{pid}/ban"),
        ("DELETE", f"{base}/participants/{pid}/ban"),
        ("GET", f"{base}/me"),
        ("GET", f"{base}/results"),
        ("GET", f"{base}/events"),
        ("GET", f"{base}/export/votes.csv"),
        ("GET", f"{base}/export.zip"),
    ]


@pytest.mark.parametrize("huge", HUGE_IDS, ids=["2^31", "2^63", "2^64", "-1", "5000-digits"])
def test_path_ids_past_the_integer_range_or_negative_are_404(client, staff, conversation, huge):
    routes = (
        path_routes(huge, 0, 0)
        + path_routes(conversation, huge, 0)[6:8]
        + path_routes(conversation, 0, huge)[10:12]
    )
    for method, url in routes:
        response = client.open(
            url, method=method, json={"status": "accepted"}, headers=staff["admin"]
        )
        error_of(response, 404)


@pytest.mark.parametrize("huge", [2**31, 2**63, 2**64, -1])
def test_body_ids_past_the_integer_range_or_negative_are_refused_with_400(
    client, staff, sessions, conversation, huge
):
    votes = count(sessions, models.VoteEventRow)
    url = f"{API}/conversations/{conversation}"
    message = error_of(client.post(f"{url}/votes", json={"statement_id": huge, "vote": 1}), 400)
    assert "statement_id must be between 0 and 2147483647" in message
    if huge != -1:  # -1 is a vote: disagree
        assert "between" in error_of(
            client.post(f"{url}/votes", json={"statement_id": 0, "vote": huge}), 400
        )
    message = error_of(
        client.post(
            f"{url}/moderation",
            headers=staff["admin"],
            json={"statement_ids": [0, huge], "status": "rejected"},
        ),
        400,
    )
    assert "each statement id must be between" in message
    assert count(sessions, models.VoteEventRow) == votes


@pytest.mark.parametrize("value", [str(2**31), str(2**63), str(-(2**63) - 1), "9" * 5000, "1_0"])
def test_query_integers_past_their_range_are_refused_with_400(client, staff, conversation, value):
    for url in (
        f"{API}/conversations",
        f"{API}/conversations/{conversation}/statements",
        f"{API}/conversations/{conversation}/moderation/log",
    ):
        for name in ("offset", "limit"):
            error_of(client.get(url, query_string={name: value}, headers=staff["admin"]), 400)


# -- 2. unencodable text -------------------------------------------------------------------


def test_statement_with_a_lone_surrogate_is_refused_with_400(client, sessions, conversation):
    statements = count(sessions, models.StatementRow)
    for text in ('{"text": "\\ud800"}', '{"text": "ok \\udfff"}', '{"text": "\\udc00\\ud800"}'):
        response = raw_json(client, "POST", f"{API}/conversations/{conversation}/statements", text)
        assert "surrogate" in error_of(response, 400)
    assert count(sessions, models.StatementRow) == statements


def test_lone_surrogates_anywhere_in_a_body_are_refused_with_400(
    client, staff, sessions, conversation
):
    url = f"{API}/conversations/{conversation}"
    cases = [
        ("POST", f"{url}/votes", '{"statement_id": 1, "vote": 1, "xid": "\\ud800"}', {}),
        ("POST", f"{url}/statements", '{"text": "fine", "xid": "a\\ud800"}', {}),
        ("POST", f"{API}/conversations", '{"topic": "\\ud800"}', staff["admin"]),
        ("PATCH", url, '{"description": "\\udbff"}', staff["admin"]),
        ("POST", f"{API}/conversations", '{"seed_statements": ["\\ud800"]}', staff["admin"]),
        ("POST", f"{API}/session", '{"name": "\\ud800", "password": "x"}', {}),
        ("POST", f"{API}/session", '{"name": "admin-1", "password": "\\ud800"}', {}),
        ("POST", f"{url}/votes", '{"\\ud800": 1}', {}),
    ]
    for method, target, text, headers in cases:
        assert "surrogate" in error_of(
            raw_json(client, method, target, text, headers=headers), 400
        ), text
    assert count(sessions, models.ConversationRow) == 1
    assert count(sessions, models.ParticipantRow) == 1


def test_nul_characters_in_query_parameters_are_refused_with_400(client, staff, conversation):
    url = f"{API}/conversations/{conversation}"
    for target in (
        f"{url}/statements?q=%00",
        f"{url}/statements?q=bus%00stop",
        f"{url}/next?xid=%00",
        f"{url}/me?xid=a%00",
        f"{url}/statements?status=%00",
        f"{API}/conversations?%00=1",
    ):
        assert "NUL" in error_of(client.get(target, headers=staff["admin"]), 400), target
    response = client.post(
        f"{API}/conversations/import?topic=%00",
        data=b"PK",
        content_type="application/zip",
        headers=staff["admin"],
    )
    assert "NUL" in error_of(response, 400)


def test_nul_characters_in_json_strings_are_refused_with_400(client, staff, sessions, conversation):
    url = f"{API}/conversations/{conversation}"
    for method, target, body, headers in [
        ("POST", f"{url}/statements", {"text": "a\x00b"}, {}),
        ("POST", f"{url}/votes", {"statement_id": 1, "vote": 1, "xid": "\x00"}, {}),
        ("POST", f"{API}/conversations", {"topic": "nul\x00"}, staff["admin"]),
        ("POST", f"{API}/session", {"name": "admin-1", "password": "\x00"}, {}),
    ]:
        response = client.open(target, method=method, json=body, headers=headers)
        assert "NUL" in error_of(response, 400), body
    assert count(sessions, models.StatementRow) == 3


def test_nul_in_an_import_topic_field_is_refused_with_400(client, staff, sessions):
    data = {"file": (io.BytesIO(zipped(SMALL)), "x.zip"), "topic": "a\x00"}
    response = client.post(
        f"{API}/conversations/import",
        data=data,
        content_type="multipart/form-data",
        headers=staff["admin"],
    )
    assert "NUL" in error_of(response, 400)
    assert count(sessions, models.ConversationRow) == 0


# -- 3. nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
def test_json_nested_deeper_than_32_levels_is_refused_with_400(client, conversation, depth):
    text = '{"text": ' + "[" * depth + "]" * depth + "}"
    response = raw_json(client, "POST", f"{API}/conversations/{conversation}/statements", text)
    assert "nests deeper than 32" in error_of(response, 400)


def test_json_nested_32_levels_passes_the_nesting_check(client, conversation):
    text = '{"text": ' + "[" * 31 + "]" * 31 + "}"
    response = raw_json(client, "POST", f"{API}/conversations/{conversation}/statements", text)
    assert "nests" not in error_of(response, 400)


def test_nan_and_infinity_are_not_json_numbers(client, conversation):
    for number in ("NaN", "Infinity", "-Infinity"):
        response = raw_json(
            client,
            "POST",
            f"{API}/conversations/{conversation}/votes",
            '{"statement_id": ' + number + ', "vote": 1}',
        )
        assert "not valid JSON" in error_of(response, 400)


# -- 4. content types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
        "application/jsonx",
        "text/json",
    ],
)
def test_json_routes_refuse_other_content_types_with_415(
    client, staff, sessions, conversation, content_type
):
    body = json.dumps({"statement_id": 1, "vote": 1, "text": "cross-site", "topic": "t"})
    url = f"{API}/conversations/{conversation}"
    for method, target, headers in [
        ("POST", f"{url}/votes", {}),
        ("POST", f"{url}/statements", {}),
        ("PATCH", url, staff["admin"]),
        ("POST", f"{API}/conversations", staff["admin"]),
        ("POST", f"{API}/session", {}),
    ]:
        response = client.open(
            target,
            method=method,
            data=body,
            headers={**headers, **({"Content-Type": content_type} if content_type else {})},
        )
        assert "application/json" in error_of(response, 415), target
    assert count(sessions, models.VoteEventRow) == 1
    assert count(sessions, models.StatementRow) == 3
    assert count(sessions, models.ConversationRow) == 1


def test_json_with_a_charset_is_accepted(client, conversation):
    response = client.post(
        f"{API}/conversations/{conversation}/votes",
        data=json.dumps({"statement_id": 1, "vote": -1}),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded", None]
)
def test_import_refuses_bodies_that_are_not_a_zip_or_multipart_with_415(
    client, staff, sessions, content_type
):
    response = client.post(
        f"{API}/conversations/import",
        data=zipped(SMALL),
        headers={**staff["admin"], **({"Content-Type": content_type} if content_type else {})},
    )
    error_of(response, 415)
    assert count(sessions, models.ConversationRow) == 0


def test_import_takes_an_octet_stream_body(client, staff):
    response = client.post(
        f"{API}/conversations/import",
        data=zipped(SMALL),
        content_type="application/octet-stream",
        headers=staff["admin"],
    )
    assert response.status_code == 201, response.json


# -- 5. body limits, chunked bodies included -------------------------------------------------


class Endless(io.RawIOBase):
    """A request body that never ends (as a chunked upload can), counting what is read.

    It claims a size of 1 GB when asked (the test client asks, to set Content-Length); a
    chunked request's Content-Length is ignored.
    """

    def __init__(self, prefix: bytes = b'{"text": "'):
        self.prefix = prefix
        self.read_bytes = 0
        self._end = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return 10**9 if self._end else self.read_bytes

    def seek(self, offset: int, whence: int = 0) -> int:
        self._end = whence == 2
        return self.tell()

    def readinto(self, buffer) -> int:
        data = (self.prefix[self.read_bytes :] + b"x" * len(buffer))[: len(buffer)]
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def chunked(client, url: str, stream, content_type: str, headers=None):
    """POST ``stream`` with no Content-Length, as gunicorn hands a chunked body to the app."""
    return client.post(
        url,
        input_stream=stream,
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked", **(headers or {})},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_json_body_over_the_limit_is_refused_with_413_reading_at_most_the_limit(
    app, client, conversation
):
    stream = Endless()
    response = chunked(
        client, f"{API}/conversations/{conversation}/statements", stream, "application/json"
    )
    assert "limit" in error_of(response, 413)
    assert stream.read_bytes <= app.config["MAX_JSON_BYTES"] + 1 + 64 * 1024  # one buffer


def test_a_chunked_json_body_within_the_limit_is_read_whole(client, conversation):
    body = io.BytesIO(json.dumps({"statement_id": 2, "vote": 0}).encode())
    response = chunked(
        client, f"{API}/conversations/{conversation}/votes", body, "application/json"
    )
    assert response.status_code == 200, response.json


def test_a_json_body_declaring_a_length_over_the_limit_is_refused_unread(client, conversation):
    stream = Endless()
    response = client.post(
        f"{API}/conversations/{conversation}/statements",
        input_stream=stream,
        content_type="application/json",
        headers={"Content-Length": str(10**9)},
    )
    error_of(response, 413)
    assert stream.read_bytes == 0


def test_a_chunked_import_over_max_content_length_is_refused_with_413(app, client, staff, sessions):
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    stream = Endless(b"PK\x03\x04")
    response = chunked(
        client, f"{API}/conversations/import", stream, "application/zip", staff["admin"]
    )
    error_of(response, 413)
    assert stream.read_bytes <= 100_000 + 64 * 1024
    assert count(sessions, models.ConversationRow) == 0


@pytest.fixture
def gunicorn(sqlite_template, tmp_path):
    """``polis-like serve`` (gunicorn) on a copy of the empty SQLite database: the body limits
    do not depend on the database, but on how a real server hands a chunked body over."""
    import shutil
    import socket
    import subprocess
    import sys

    shutil.copy(sqlite_template, tmp_path / "db.sqlite")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "SECRET_KEY": "hostile",
        "POLIS_LIKE_VAR": str(tmp_path),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polis_like.launcher.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "no server"
            time.sleep(0.2)
    yield port
    process.terminate()
    log = process.communicate(timeout=20)[1].decode(errors="replace")
    assert "Traceback" not in log, log


def test_gunicorn_refuses_a_chunked_json_body_over_the_limit_with_413(gunicorn):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    connection.putrequest("POST", f"{API}/conversations/1/statements")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for part in [b'{"text": "'] + [b"x" * 8192] * 16:  # 128 KB, twice the limit
        connection.send(b"%x\r\n%s\r\n" % (len(part), part))
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["status"] == 413
    connection.close()


# -- 6. zip bombs ----------------------------------------------------------------------------


def zipped(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((FIXTURES / name).iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def zip_bomb(megabytes: int, *, declared: int | None = None) -> bytes:
    """An export whose votes.csv is ``megabytes`` MB of zeros, deflated about 1,000 times (built
    by hand from one repeated flushed block: zipfile would take seconds to deflate it);
    ``declared`` is the size its headers claim (the truth by default)."""
    chunk = bytes(1024**2)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = first + again * (megabytes - 1) + deflate.flush()
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    comments = (FIXTURES / SMALL / "comments.csv").read_bytes()
    members = [
        (b"comments.csv", 0, comments, zlib.crc32(comments), len(comments)),
        (b"votes.csv", 8, data, crc, megabytes * 1024**2 if declared is None else declared),
    ]
    local, central = b"", b""
    for name, method, raw, member_crc, size in members:
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0,
                member_crc,
                len(raw),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                len(local),
            )
            + name
        )
        local += (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                0,
                method,
                0,
                0,
                member_crc,
                len(raw),
                size,
                len(name),
                0,
            )
            + name
            + raw
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), len(local), 0)
    return local + central + end


def test_the_zip_bomb_helper_builds_a_real_bomb():
    with zipfile.ZipFile(io.BytesIO(zip_bomb(3))) as archive:
        assert archive.read("votes.csv") == bytes(3 * 1024**2)


def test_a_400_kb_zip_bomb_is_refused_in_well_under_a_second(client, staff, sessions):
    bomb = zip_bomb(400)
    assert len(bomb) < 450_000
    started = time.perf_counter()
    response = client.post(
        f"{API}/conversations/import",
        data=bomb,
        content_type="application/zip",
        headers=staff["admin"],
    )
    assert time.perf_counter() - started < 0.5
    message = error_of(response, 413)
    assert message.startswith("upload.zip/votes.csv: ") and "zip bomb" in message, message
    assert count(sessions, models.ConversationRow) == 0


def test_a_1_mb_zip_bomb_costs_no_more_than_a_few_mb_of_memory(tmp_path):
    from polis_like.errors import TooLarge
    from polis_like.io import read_export

    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bomb(1000))
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="zip bomb"):
            read_export(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2


def test_a_zip_that_lies_about_its_size_is_not_inflated_past_what_it_declares(tmp_path):
    from polis_like.errors import InputError
    from polis_like.io import read_export

    path = tmp_path / "liar.zip"
    path.write_bytes(zip_bomb(200, declared=1000))
    tracemalloc.start()
    try:
        with pytest.raises(InputError):
            read_export(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2


# -- 7. nosniff ------------------------------------------------------------------------------


def test_every_response_says_nosniff(client, staff, conversation):
    for response in (
        client.get("/"),
        client.get("/healthz"),
        client.get(f"{API}/openapi.json"),
        client.get(f"{API}/nowhere"),
        client.get(f"{API}/conversations/{2**40}"),
        client.post(f"{API}/conversations/{conversation}/votes", data="x"),
        client.get(f"{API}/conversations/{conversation}/export/votes.csv", headers=staff["admin"]),
        client.get(f"{API}/conversations/{conversation}/next"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.status


# -- 8. the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(cli, capsys, database_url):
    """Run ``polis-like ARGS --database-url ...``: (exit status, stdout, stderr), with
    conftest's ``cli`` (which disposes of the engines the command makes)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = cli([*args, "--database-url", database_url])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def one_line_error(err: str) -> str:
    """The command's error line; tqdm's progress bar may come before it on stderr."""
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "polis-like: error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_importing_a_voter_id_past_2_63_is_a_one_line_error(cli, sessions, tmp_path):
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / SMALL, folder)
    lines = (folder / "votes.csv").read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[3] = str(2**64)
    lines[1] = ",".join(fields)
    (folder / "votes.csv").write_text("".join(lines))
    status, out, err = cli("import", str(folder))
    assert status == 2 and out == ""
    assert "ids must be between 0 and" in one_line_error(err)
    assert count(sessions, models.ConversationRow) == 0


def test_importing_a_zip_bomb_is_a_one_line_error(cli, sessions, tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bomb(400))
    started = time.perf_counter()
    status, _, err = cli("import", str(path))
    assert time.perf_counter() - started < 1
    assert status == 2 and "zip bomb" in one_line_error(err)
    assert count(sessions, models.ConversationRow) == 0


@pytest.fixture
def imported(cli) -> str:
    status, out, _ = cli("import", str(FIXTURES / SMALL))
    assert status == 0
    return out.split()[-1]


def test_exporting_into_an_existing_file_is_a_one_line_error(cli, imported, tmp_path):
    (tmp_path / "existing").write_text("keep me")
    status, _, err = cli("export", imported, str(tmp_path / "existing"))
    assert status == 2 and "is a file" in one_line_error(err)
    assert (tmp_path / "existing").read_text() == "keep me"


def test_exporting_into_a_folder_that_cannot_be_made_is_a_one_line_error(cli, imported, tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = cli("export", imported, str(tmp_path / "file" / "inside"))
    assert status == 2 and "cannot write" in one_line_error(err)


@pytest.mark.parametrize("conversation_id", ["999", str(2**31), str(2**63), str(2**64)])
def test_exporting_an_unknown_conversation_is_a_one_line_error(cli, conversation_id, tmp_path):
    status, _, err = cli("export", conversation_id, str(tmp_path / "out"))
    assert status == 2
    assert f"no conversation {conversation_id}" in one_line_error(err)
    assert not (tmp_path / "out").exists()
