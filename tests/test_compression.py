"""gzip on the wire (server/compress.py): the results, exports, pages and static files are
compressed when the client allows it, to exactly the bytes it would get without, and conditional
requests keep working with the compressed variant's ETag."""

from __future__ import annotations

import gzip
import random

import pytest
from conftest import FIXTURES, give_conversation

from server.compress import MIN_BYTES, GzipCache, accepts_gzip

API = "/api/v1"
GZIP = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture
def computed(sessions, engine):
    """A small real conversation imported, with the worker's first result: its id."""
    from polis_like.storage.transfer import import_export
    from worker.runner import Worker

    conversation_id = import_export(sessions, FIXTURES / "london.youth.policing")
    assert Worker(engine).step() == [conversation_id]
    return conversation_id


def assert_gzip_of(packed, plain, *, streamed: bool = False) -> None:
    """``packed`` is the gzip variant of the identity response ``plain`` (``streamed``: sent a
    chunk at a time, without a length)."""
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "Accept-Encoding" in plain.headers["Vary"]
    if streamed:
        assert "Content-Length" not in packed.headers and len(packed.data) < len(plain.data)
    else:
        assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data)
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["Content-Type"] == plain.headers["Content-Type"]


@pytest.mark.parametrize(
    "header, allowed",
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZip;Q=0.5", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # the coding named beats the wildcard
        ("*;q=0", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_allows_gzip_by_its_own_quality_else_the_wildcard(header, allowed):
    assert accepts_gzip(header) is allowed


def test_the_cache_compresses_a_body_once_and_keeps_within_its_limit():
    cache = GzipCache(limit=80_000)
    first = b"".join(b"statement %d agrees\n" % i for i in range(5000))
    kept = cache.gzip(first)
    assert cache.gzip(first) is kept  # the second reader gets the same bytes, not a new gzip
    assert gzip.decompress(kept) == first
    for i in range(50):  # 150 KB that gzip cannot shrink: the oldest entries go
        cache.gzip(random.Random(i).randbytes(3000))
    assert cache.size <= cache.limit
    assert cache.gzip(first) is not kept


def test_results_come_gzipped_with_a_weak_etag_that_still_gives_304(client, computed):
    path = f"{API}/conversations/{computed}/results"
    plain = client.get(path)
    packed = client.get(path, headers=GZIP)
    assert_gzip_of(packed, plain)
    strong = plain.headers["ETag"]
    assert not strong.startswith("W/")
    assert packed.headers["ETag"] == f"W/{strong}"
    # the client sends back the ETag it got, and the 304 names that same ETag
    again = client.get(path, headers={**GZIP, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == packed.headers["ETag"]
    assert "Accept-Encoding" in again.headers["Vary"]
    plain_again = client.get(path, headers={"If-None-Match": strong})
    assert plain_again.status_code == 304 and plain_again.headers["ETag"] == strong
    with_texts = f"{path}?include=texts"
    assert_gzip_of(client.get(with_texts, headers=GZIP), client.get(with_texts))


@pytest.mark.parametrize("header", [None, "gzip;q=0", "identity", "br"])
def test_without_gzip_in_accept_encoding_the_body_is_identity(client, computed, header):
    headers = {"Accept-Encoding": header} if header is not None else {}
    response = client.get(f"{API}/conversations/{computed}/results", headers=headers)
    assert response.status_code == 200 and len(response.data) >= MIN_BYTES
    assert "Content-Encoding" not in response.headers
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.json["tick"] == 1
    assert not response.headers["ETag"].startswith("W/")


def test_csv_exports_are_gzipped_and_the_zip_is_not(client, staff, computed):
    path = f"{API}/conversations/{computed}/export"
    give_conversation(client, staff, computed)
    moderator = staff["moderator"]
    csv = f"{path}/votes.csv"  # gzipped as it is sent, a chunk at a time
    assert_gzip_of(
        client.get(csv, headers={**moderator, **GZIP}),
        client.get(csv, headers=moderator),
        streamed=True,
    )
    archive = client.get(f"{path}.zip", headers={**moderator, **GZIP})
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    assert "Content-Encoding" not in archive.headers
    assert "Accept-Encoding" not in archive.headers.get("Vary", "")


def test_pages_and_static_files_are_gzipped(client, computed):
    page = f"/c/{computed}/report"
    assert_gzip_of(client.get(page, headers=GZIP), client.get(page))
    script = "/static/vendor/uplot/uPlot.esm.js"
    # a file's response is open until closed (a server closes it once sent)
    with client.get(script) as plain, client.get(script, headers=GZIP) as packed:
        assert_gzip_of(packed, plain)
        assert "Accept-Ranges" not in packed.headers
        assert packed.headers["ETag"] == f"W/{plain.headers['ETag']}"
    with client.get(script, headers={**GZIP, "If-None-Match": packed.headers["ETag"]}) as again:
        assert again.status_code == 304
        assert again.headers["ETag"] == packed.headers["ETag"]


def test_the_event_stream_head_and_tiny_bodies_are_never_compressed(app, client, computed):
    app.config.update(STREAM_MAX_S=0.05, STREAM_PING_S=0.05)
    stream = client.get(f"{API}/conversations/{computed}/events", headers=GZIP)
    assert stream.mimetype == "text/event-stream"
    assert "Content-Encoding" not in stream.headers
    assert stream.get_data(as_text=True).startswith("retry: 2000\n\n")
    head = client.head(f"{API}/conversations/{computed}/results", headers=GZIP)
    assert head.status_code == 200 and "Content-Encoding" not in head.headers
    tiny = client.get(f"{API}/conversations/{computed}", headers=GZIP)
    assert tiny.status_code == 200 and len(tiny.data) < MIN_BYTES
    assert "Content-Encoding" not in tiny.headers
    assert "Accept-Encoding" in tiny.headers["Vary"]  # a longer description would be compressed
