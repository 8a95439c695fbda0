"""gzip on the wire: the results documents, the CSV exports, the pages and the static files.

Compressed when the request's ``Accept-Encoding`` allows gzip, the type is text-like
(:data:`COMPRESSIBLE`) and the body has at least :data:`MIN_BYTES`. Never compressed: zip
files and other binary types, streamed bodies (the event stream) unless marked by
:func:`gzip_as_sent` (the CSV exports, compressed chunk by chunk as they go, without a
``Content-Length``), files sent by ``send_file`` other than the static files, partial content,
``HEAD``, and bodies already encoded.

A compressed response is another representation of the resource, so its strong ETag is made
weak (``W/"3-12"``, as nginx does). The routes compare ETags weakly, as RFC 9110 asks of
``If-None-Match``, so a client that sends back the ETag of the gzip variant still gets 304.

Bodies that carry an ETag (results, positions, participation, static files) are the same bytes
for many readers: their gzip is kept per process, by a digest of the body, so that a new tick is
compressed once per process rather than once per reader.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator

from flask import Flask, Response, request
from werkzeug.http import unquote_etag

#: The media types worth compressing (text, JSON and other text formats).
COMPRESSIBLE = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
        "text/css",
        "text/csv",
        "text/html",
        "text/javascript",
        "text/plain",
        "text/xml",
    }
)
#: Smaller bodies go as they are: gzip's header and the framing cost more than they save.
MIN_BYTES = 1024
#: zlib's level, for speed: on the demo's documents 5 is within 2 % of 6's size in 40 to 65 % of
#: its time, and within 4 % of 9's (docs/benchmarks.md, "Compression").
LEVEL = 5
#: The compressed bodies kept per process (least recently used dropped first).
CACHE_BYTES = 32 * 1024 * 1024


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip: gzip's own q (or x-gzip's), else the
    wildcard's, and none by default (RFC 9110 section 12.5.3). ``q=0`` refuses it."""
    qualities: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        qualities.setdefault(coding, quality)
    for coding in ("gzip", "x-gzip", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False


def gzip_bytes(data: bytes) -> bytes:
    """``data`` in gzip format at :data:`LEVEL` (no file name, time 0: the same bytes each time)."""
    return zlib.compress(data, LEVEL, wbits=31)


class GzipCache:
    """Compressed bodies by a digest of the uncompressed body, least recently used dropped past
    ``limit`` bytes. Threads asking for the same body at once compress it once."""

    def __init__(self, limit: int = CACHE_BYTES):
        self.limit = limit
        self.size = 0
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[bytes, threading.Lock] = {}

    def gzip(self, data: bytes) -> bytes:
        """``data`` compressed, from the cache when this process has compressed it before."""
        key = hashlib.blake2b(data, digest_size=16).digest()
        if (found := self._get(key)) is not None:
            return found
        with self._lock:
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            if (found := self._get(key)) is not None:
                return found
            compressed = gzip_bytes(data)
            with self._lock:
                self._pending.pop(key, None)
                if len(compressed) <= self.limit // 4:
                    self._entries[key] = compressed
                    self.size += len(compressed)
                    while self.size > self.limit:
                        self.size -= len(self._entries.popitem(last=False)[1])
        return compressed

    def _get(self, key: bytes) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found


def compressible(response: Response) -> Response:
    """``response`` marked as worth compressing though its type is not text-like: a binary body
    that gzip shrinks well (the positions: repeated group numbers, NaNs)."""
    response.compressible = True  # type: ignore[attr-defined]
    return response


def gzip_as_sent(response: Response) -> Response:
    """``response`` (a streamed body, never whole in memory) marked to be gzipped a chunk at a
    time as it is sent, when the client accepts gzip."""
    response.gzip_as_sent = True  # type: ignore[attr-defined]
    return response


def _gzip_chunks(chunks) -> Iterator[bytes]:
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    for chunk in chunks:
        if packed := packer.compress(chunk):
            yield packed
    yield packer.flush()


def _is_static() -> bool:
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


def _weak(etag: str) -> str:
    return etag if etag.startswith("W/") else f"W/{etag}"


def compress(response: Response, cache: GzipCache) -> Response:
    """``response`` gzipped when the request and the response allow it (see the module)."""
    if response.status_code == 304:
        # The ETag of a 304 is the one the client holds: the gzip variant's, if it sent that.
        etag = response.headers.get("ETag")
        if etag and request.if_none_match.is_weak(unquote_etag(etag)[0]):
            response.headers["ETag"] = _weak(etag)
        response.vary.add("Accept-Encoding")
        return response
    if (
        (response.mimetype not in COMPRESSIBLE and not getattr(response, "compressible", False))
        or "Content-Encoding" in response.headers
        or (
            (response.is_streamed or response.direct_passthrough)
            and not _is_static()
            and not getattr(response, "gzip_as_sent", False)
        )
    ):
        return response
    response.vary.add("Accept-Encoding")
    if (
        request.method == "HEAD"
        or response.status_code < 200
        or response.status_code in (204, 206)
        or "no-transform" in response.headers.get("Cache-Control", "")
        or not accepts_gzip(request.headers.get("Accept-Encoding"))
    ):
        return response
    length = response.content_length
    if length is not None and length < MIN_BYTES:
        return response
    if getattr(response, "gzip_as_sent", False):
        response.response = _gzip_chunks(response.iter_encoded())
        response.headers.pop("Content-Length", None)
        response.headers["Content-Encoding"] = "gzip"
        return response
    if response.is_streamed and (length is None or length > CACHE_BYTES // 4):
        return response  # a static file too large to read whole
    response.direct_passthrough = False  # a static file: read it (closing it) to compress it
    data = response.get_data()
    if len(data) < MIN_BYTES:
        return response
    etag = response.headers.get("ETag")
    compressed = cache.gzip(data) if etag else gzip_bytes(data)
    if len(compressed) >= len(data):
        return response
    response.set_data(compressed)  # sets Content-Length
    response.headers["Content-Encoding"] = "gzip"
    response.headers.pop("Accept-Ranges", None)  # byte ranges would be of the identity body
    if etag:
        response.headers["ETag"] = _weak(etag)
    return response


def init_app(app: Flask) -> None:
    """Compress the app's responses; register before the other ``after_request`` functions, so
    that it runs after them (Flask runs them in reverse), on the final body."""
    cache = GzipCache()
    app.extensions["polis_like.gzip_cache"] = cache
    app.after_request(lambda response: compress(response, cache))
