"""Typed JSON documents: frozen dataclasses that turn into JSON, back, and into a JSON Schema.

A persisted document is declared once, as dataclasses whose fields carry a line of help
(``doc(...)``); from that one declaration come its JSON form, its parsing (with a clear error for
a document of another shape), its JSON Schema (served in the OpenAPI document) and its field
reference (docs). Supported field types: ``int``, ``float``, ``str``, ``bool``, ``X | None``,
``list[X]``, ``dict[str, X]`` and nested documents.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

from polis_like.errors import PolisLikeError

T = TypeVar("T")


class DocumentError(PolisLikeError):
    """A stored document that does not have the declared shape (a bug or a newer version)."""


def doc(text: str, *, name: str | None = None) -> Any:
    """A document field with its one line of help; ``name`` when its JSON key differs."""
    metadata = {"doc": text}
    if name is not None:
        metadata["json"] = name
    return dataclasses.field(metadata=metadata)


def _is_document(kind: Any) -> bool:
    """Whether ``kind`` is a document class (a dataclass, not an instance of one)."""
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get("json", field.name)


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    # Once per class: evaluating the annotations (strings, with ``from __future__ import
    # annotations``) took most of the time of parsing a results document, which every web
    # process does for each new tick.
    return typing.get_type_hints(cls)


def to_plain(value: Any) -> Any:
    """The JSON-ready form of a document (dicts, lists, numbers, strings, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_key(f): to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def from_plain(cls: type[T], value: Any, where: str = "$") -> T:
    """Parse the JSON form of a ``cls`` document; :class:`DocumentError` names what is wrong."""
    try:
        return _parser(typing.cast(Any, cls))(value)
    except _Mismatch:
        return _parse(cls, value, where)  # the slow walk again, to say where


class _Mismatch(Exception):
    """A value that does not have its declared shape (the fast parsers do not say where)."""


_Parser = typing.Callable[[Any], Any]


@functools.cache
def _parser(kind: Any) -> _Parser:
    """A function parsing the JSON form of ``kind``, made once per type.

    It accepts exactly what :func:`_parse` accepts and builds the same values, without the
    type inspection and the path of each value: a results document (thousands of values),
    parsed by every web process at every tick, took 18 ms and now takes a fraction of it. On
    any mismatch it raises :class:`_Mismatch`, and :func:`_parse` says what and where.
    """
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = _parser(next(a for a in typing.get_args(kind) if a is not type(None)))
        return lambda value: None if value is None else inner(value)
    if origin is list:
        item = _parser(typing.get_args(kind)[0])

        def parse_list(value: Any) -> list:
            if not isinstance(value, list):
                raise _Mismatch
            return [item(v) for v in value]

        return parse_list
    if origin is dict:
        entry = _parser(typing.get_args(kind)[1])

        def parse_dict(value: Any) -> dict:
            if not isinstance(value, dict):
                raise _Mismatch
            return {k: entry(v) for k, v in value.items()}

        return parse_dict
    if _is_document(kind):
        hints = _hints(kind)
        fields = [(f.name, _key(f), _parser(hints[f.name])) for f in dataclasses.fields(kind)]

        def parse_document(value: Any) -> Any:
            if not isinstance(value, dict):
                raise _Mismatch
            try:
                return kind(**{name: parse(value[key]) for name, key, parse in fields})
            except KeyError:
                raise _Mismatch from None

        return parse_document
    if kind is float:
        return _float
    if kind is int:
        return _int
    if kind in (str, bool):

        def parse_exactly(value: Any) -> Any:
            if not isinstance(value, kind):
                raise _Mismatch
            return value

        return parse_exactly
    raise TypeError(f"unsupported document type {kind!r}")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Mismatch
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Mismatch
    return value


def _parse(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return _parse(options[0], value, where)
    if origin is list:
        if not isinstance(value, list):
            raise DocumentError(f"{where} must be a list")
        (item,) = typing.get_args(kind)
        return [_parse(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DocumentError(f"{where} must be an object")
        _, item = typing.get_args(kind)
        return {k: _parse(item, v, f"{where}.{k}") for k, v in value.items()}
    if _is_document(kind):
        if not isinstance(value, dict):
            raise DocumentError(f"{where} must be an object")
        hints = _hints(kind)
        values = {}
        for field in dataclasses.fields(kind):
            key = _key(field)
            if key not in value:
                raise DocumentError(f"{where}.{key} is missing")
            values[field.name] = _parse(hints[field.name], value[key], f"{where}.{key}")
        return kind(**values)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DocumentError(f"{where} must be a number")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DocumentError(f"{where} must be an integer")
        return value
    if kind in (str, bool):
        if not isinstance(value, kind):
            raise DocumentError(f"{where} must be a {kind.__name__}")
        return value
    raise TypeError(f"unsupported document type {kind!r}")


def json_schema(cls: type, *, ref: str = "#/components/schemas/") -> dict[str, dict]:
    """JSON Schemas (OpenAPI 3.1 dialect) of ``cls`` and every document nested in it, by name."""
    schemas: dict[str, dict] = {}
    _schema_of(cls, schemas, ref)
    return schemas


def _schema_of(kind: Any, schemas: dict[str, dict], ref: str) -> dict:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        inner = _schema_of(options[0], schemas, ref)
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is list:
        (item,) = typing.get_args(kind)
        return {"type": "array", "items": _schema_of(item, schemas, ref)}
    if origin is dict:
        _, item = typing.get_args(kind)
        return {"type": "object", "additionalProperties": _schema_of(item, schemas, ref)}
    if _is_document(kind):
        name = kind.__name__
        if name not in schemas:
            schemas[name] = {}  # recursion guard
            hints = _hints(kind)
            properties = {}
            for field in dataclasses.fields(kind):
                schema = dict(_schema_of(hints[field.name], schemas, ref))
                schema["description"] = field.metadata.get("doc", "")
                properties[_key(field)] = schema
            schemas[name] = {
                "type": "object",
                "description": (kind.__doc__ or "").strip(),
                "required": list(properties),
                "properties": properties,
            }
        return {"$ref": ref + name}
    simple = {int: "integer", float: "number", str: "string", bool: "boolean"}
    if kind in simple:
        return {"type": simple[kind]}
    raise TypeError(f"unsupported document type {kind!r}")


def field_reference(cls: type) -> Iterator[tuple[str, str, str]]:
    """(path, type, help) of every field of ``cls`` and of the documents nested in it."""
    yield from _fields(cls, "", set())


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return f"{_type_name(options[0])} or null"
    if origin is list:
        return f"list of {_type_name(typing.get_args(kind)[0])}"
    if origin is dict:
        return f"object of {_type_name(typing.get_args(kind)[1])}"
    if _is_document(kind):
        return kind.__name__
    return {int: "integer", float: "number", str: "string", bool: "boolean"}[kind]


def _nested(kind: Any) -> tuple[type | None, str]:
    """The document inside ``kind`` (lists, dicts and null aside) and the path marks to it."""
    marks = ""
    while typing.get_origin(kind) is not None:
        origin = typing.get_origin(kind)
        if origin is list:
            marks += "[]"
        elif origin is dict:
            marks += ".*"
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = args[-1]
    return (kind if _is_document(kind) else None), marks


def _fields(cls: type, prefix: str, seen: set[type]) -> Iterator[tuple[str, str, str]]:
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        path = f"{prefix}{_key(field)}"
        kind = hints[field.name]
        yield path, _type_name(kind), field.metadata.get("doc", "")
        nested, marks = _nested(kind)
        if nested is not None and nested not in seen:
            yield from _fields(nested, f"{path}{marks}.", seen | {nested})
