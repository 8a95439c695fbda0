"""What the API refuses before a route sees it: ids past the database's range, oversized or
over-nested bodies, text no database column can hold, bodies of the wrong content type.

Each refusal is a domain error (400, 404, 413 or 415), so hostile input never reaches the
database as a value it cannot store, and never costs more memory than the body limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Flask, request
from werkzeug.routing import BaseConverter

from polis_like.errors import InputError, TooLarge, UnsupportedMedia
from polis_like.storage.models import MAX_ID

#: How deeply a JSON body may nest arrays and objects; ours nest two levels at most.
MAX_JSON_DEPTH = 32

_CHUNK = 64 * 1024


def _decimal_up_to(limit: int) -> str:
    """A regular expression for the decimal numbers 0 to ``limit`` (leading zeros allowed)."""
    digits = str(limit)
    shorter = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    lower = [
        f"{digits[:i]}[0-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}"
        for i, d in enumerate(digits)
        if d != "0"
    ]
    return "(?:" + "|".join([*shorter, *lower, digits]) + ")"


class IdConverter(BaseConverter):
    """``<id:name>`` in a route: a non-negative integer up to :data:`MAX_ID`, else a 404.

    The range is in the pattern, not in ``to_python``: a converter that refuses a value makes
    werkzeug answer 405 when another method's route has the same path, and a pattern of
    bounded length never converts a path of thousands of digits.
    """

    regex = _decimal_up_to(MAX_ID)
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


def init_app(app: Flask) -> None:
    """Register the ``id`` converter (before any route uses it) and the query check."""
    app.url_map.converters["id"] = IdConverter
    app.before_request(check_query)


def check_query() -> None:
    """Refuse query parameters with NUL characters: no database text column can hold them."""
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise InputError(f"the query parameter {key!r} holds a NUL character")


def read_limited(limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes; never reads more than
    ``limit + 1`` bytes, whether the body is sized by Content-Length or chunked."""
    if (request.content_length or 0) > limit:
        raise TooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")
    stream = request.stream
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(_CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise TooLarge(f"the body is over the limit of {limit} bytes")
    return b"".join(parts)


def require_media(*types: str) -> None:
    """Refuse with 415 a body whose Content-Type is none of ``types`` (parameters aside).

    Only a JSON content type for JSON routes means a cross-site HTML form (which can send
    only text/plain, urlencoded or multipart bodies) cannot write with a visitor's cookies.
    """
    if request.mimetype not in types:
        sent = request.mimetype or "no content type"
        raise UnsupportedMedia(f"the body must be sent as {' or '.join(types)}, not {sent}")


def parse_json(data: bytes) -> object:
    """``data`` as JSON, with every string storable and the nesting at most
    :data:`MAX_JSON_DEPTH` deep; a 400 otherwise."""
    if not data.strip():
        raise InputError("the body is empty; send a JSON object")
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the body is not valid JSON: {error}") from None
    _check_value(value, 1)
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _check_value(value: object, depth: int) -> None:
    """Walk the parsed body: refuse deep nesting, lone surrogates and NUL characters."""
    if isinstance(value, str):
        check_text(value)
        return
    if isinstance(value, dict):
        for key in value:
            check_text(key)
        children: Iterable[object] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    if depth > MAX_JSON_DEPTH:
        raise InputError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    for child in children:
        _check_value(child, depth + 1)


def check_text(text: str) -> None:
    """Refuse text that UTF-8 cannot encode (lone surrogates) or that holds NUL characters:
    PostgreSQL cannot store either, and SQLite would store text no reader can decode."""
    if "\x00" in text:
        raise InputError("the body holds a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            "the body holds a lone UTF-16 surrogate; send valid Unicode text"
        ) from None
