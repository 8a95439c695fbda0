"""The OpenAPI 3.1 document of ``/api/v1`` (a test checks it names every route and no other)."""

from __future__ import annotations

from polis_like import __version__
from polis_like.storage.results import ResultsDocument, json_schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "Bad input (malformed JSON, wrong types, empty or oversized text)",
        401: "Not signed in",
        403: "Not allowed (closed conversation, banned, not staff)",
        404: "No such conversation, statement or participant",
        409: "Conflict with stored data (duplicate statement)",
        429: "Over a rate limit; Retry-After says when to try again",
        503: "Try again later",
    }
    return {str(c): {**_json(_ref("Error"), text[c])} for c in codes}


def _op(
    summary: str,
    responses: dict,
    *,
    body: dict | None = None,
    security: str | None = None,
    parameters: list | None = None,
    tag: str = "participation",
) -> dict:
    op = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if security:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        op["x-role"] = security
    if parameters:
        op["parameters"] = parameters
    return op


CID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SID = {"name": "sid", "in": "path", "required": True, "schema": {"type": "integer"}}
PID = {"name": "pid", "in": "path", "required": True, "schema": {"type": "integer"}}
XID = {
    "name": "xid",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "The participant's external id, when the conversation uses XIDs",
}
INCLUDE = {
    "name": "include",
    "in": "query",
    "required": False,
    "schema": {"enum": ["texts"]},
    "description": "`texts` adds `texts`, an object of statement texts by id (staff: every "
    "statement; others: the statements participants may see); the ETag then also names the "
    "conversation's revision",
}
PAGE = [
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
]
NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"enum": ["votes", "comments", "participants-votes", "summary", "stats-history"]},
}
EXACT = {
    "name": "exact",
    "in": "query",
    "required": False,
    "schema": {"enum": ["1", "0", "true", "false"], "default": "0"},
    "description": "By default a text (comment body, xid, topic, description, other summary "
    "rows) that begins with = + - @, a tab or a carriage return gets a leading `'`, so that a "
    "spreadsheet shows it instead of running it as a formula; `1` writes every text exactly as "
    "stored, as Pol.is does (to import on another server). Numbers are never changed.",
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "Settings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "topic": {"type": "string", "maxLength": 500},
            "description": {"type": "string", "maxLength": 10000},
            "is_open": {"type": "boolean"},
            "moderation": {"enum": ["strict", "open"]},
            "write_enabled": {"type": "boolean"},
            "map_enabled": {"type": "boolean"},
            "xid_mode": {"enum": ["off", "optional", "required"]},
            "invite_code": {
                "type": ["string", "null"],
                "pattern": "^[A-Za-z0-9_-]{6,64}$",
                "description": "New participants must bring it (`?invite=` on their link); "
                "null for none",
            },
            "seed_statements": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Conversation": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "topic": {"type": "string"},
            "description": {"type": "string"},
            "is_open": {"type": "boolean"},
            "moderation": {"type": "string"},
            "write_enabled": {"type": "boolean"},
            "map_enabled": {"type": "boolean"},
            "xid_mode": {"type": "string"},
            "created_ms": {"type": "integer"},
            "invite_code": {
                "type": ["string", "null"],
                "description": "Shown to the conversation's moderators only",
            },
        },
    },
    "Moderators": {
        "type": "object",
        "properties": {
            "conversation": {"type": "integer"},
            "moderators": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
            },
        },
    },
    "Statement": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "text": {"type": "string"},
            "is_meta": {"type": "boolean"},
            "is_seed": {"type": "boolean"},
            "created_ms": {"type": "integer"},
            "status": {"enum": ["pending", "accepted", "rejected"]},
            "author": {"type": ["integer", "null"]},
        },
    },
    "Next": {
        "type": "object",
        "required": ["statement", "remaining", "total"],
        "properties": {
            "statement": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "text": {"type": "string"},
                            "is_meta": {"type": "boolean"},
                        },
                    },
                ]
            },
            "remaining": {"type": "integer"},
            "total": {"type": "integer"},
            "voted": {"type": "integer"},
            "participant": {"type": ["integer", "null"]},
            "vote": {"type": "object"},
        },
    },
    "Vote": {
        "type": "object",
        "required": ["statement_id", "vote"],
        "additionalProperties": False,
        "properties": {
            "statement_id": {"type": "integer"},
            "vote": {"enum": [1, 0, -1]},
            "xid": {"type": "string"},
            "invite": {"type": "string", "description": "The invite code, for a new participant"},
        },
    },
    "NewStatement": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 1000},
            "xid": {"type": "string"},
            "invite": {"type": "string", "description": "The invite code, for a new participant"},
        },
    },
    "Decision": {
        "type": "object",
        "properties": {
            "status": {"enum": ["pending", "accepted", "rejected"]},
            "is_meta": {"type": "boolean"},
        },
    },
    "ParticipationPoint": {
        "type": "object",
        "properties": {
            "tick": {"type": "integer"},
            "computed_ms": {"type": "integer"},
            **{
                name: {"type": "integer"}
                for name in ("participants", "votes", "statements", "accepted", "pending")
                + ("rejected",)
            },
        },
    },
    "ModerationQueue": {
        "type": "object",
        "required": ["statements", "counts", "status", "q", "total", "offset", "limit"],
        "properties": {
            "statements": {
                "type": "array",
                "items": {
                    "allOf": [
                        _ref("Statement"),
                        {
                            "type": "object",
                            "properties": {
                                "author_banned": {"type": "boolean"},
                                "near_duplicates": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "integer"},
                                            "text": {"type": "string"},
                                            "status": {"enum": ["pending", "accepted", "rejected"]},
                                        },
                                    },
                                },
                            },
                        },
                    ]
                },
            },
            "counts": {
                "type": "object",
                "properties": {
                    "pending": {"type": "integer"},
                    "accepted": {"type": "integer"},
                    "rejected": {"type": "integer"},
                },
            },
            "status": {"enum": ["pending", "accepted", "rejected"]},
            "q": {"type": "string"},
            "total": {"type": "integer"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
        },
    },
    # The results document and its parts, generated from their one declaration (docs/api.md).
    **json_schema(ResultsDocument),
}


AID = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "integer"}}
ACCOUNT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "role": {"enum": ["admin", "moderator"]},
        "created_ms": {"type": "integer"},
        "tokens": {"type": "integer", "description": "How many bearer tokens it holds"},
        "disabled": {
            "type": "boolean",
            "description": "A disabled account signs nobody in (password, cookie or token)",
        },
    },
}
SHOWN_ONCE = {"type": "object", "description": "Stored hashed: this is the only time it shows"}


def _account_paths() -> dict:
    """The accounts API (admins only)."""
    new_password = {
        "type": "object",
        "properties": {"password": {"type": "string", "minLength": 8, "maxLength": 1000}},
    }
    return {
        "/api/v1/accounts": {
            "get": _op(
                "Every account, by name",
                {"200": _json({"type": "object"}), **_errors(401, 403)},
                security="admin",
                tag="accounts",
            ),
            "post": _op(
                "Create a moderator or admin; returns its password (generated unless given) "
                "and a bearer token, shown once",
                {"201": _json(SHOWN_ONCE, "Created"), **_errors(400, 401, 403, 409)},
                body={
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 80},
                        "role": {"enum": ["moderator", "admin"]},
                        "password": {"type": "string", "minLength": 8, "maxLength": 1000},
                    },
                },
                security="admin",
                tag="accounts",
            ),
        },
        "/api/v1/accounts/{account_id}": {
            "patch": _op(
                "Disable an account (its password, session cookies and tokens stop working at "
                "once; not oneself: 403; not the last admin who can sign in: 409) or enable it",
                {"200": _json(ACCOUNT), **_errors(400, 401, 403, 404, 409)},
                body={
                    "type": "object",
                    "required": ["disabled"],
                    "properties": {"disabled": {"type": "boolean"}},
                    "additionalProperties": False,
                },
                security="admin",
                parameters=[AID],
                tag="accounts",
            ),
            "delete": _op(
                "Delete an account and its tokens (not oneself: 403; not the last admin: 409)",
                {"204": {"description": "Deleted"}, **_errors(401, 403, 404, 409)},
                security="admin",
                parameters=[AID],
                tag="accounts",
            ),
        },
        "/api/v1/accounts/{account_id}/password": {
            "post": _op(
                "Set a new password (generated unless given), shown once; ends the account's "
                "session cookies",
                {"200": _json(SHOWN_ONCE), **_errors(400, 401, 403, 404)},
                body=new_password,
                security="admin",
                parameters=[AID],
                tag="accounts",
            ),
        },
        "/api/v1/accounts/{account_id}/tokens": {
            "post": _op(
                "Issue a new bearer token, shown once (the body is `{}`)",
                {"201": _json(SHOWN_ONCE, "Created"), **_errors(400, 401, 403, 404)},
                body={"type": "object"},
                security="admin",
                parameters=[AID],
                tag="accounts",
            ),
            "delete": _op(
                "Revoke every bearer token of the account",
                {"200": _json({"type": "object"}), **_errors(401, 403, 404)},
                security="admin",
                parameters=[AID],
                tag="accounts",
            ),
        },
    }


def document() -> dict:
    staff = "moderator"
    paths = {
        "/api/v1/conversations": {
            "get": _op(
                "List conversations",
                {"200": _json({"type": "object"}), **_errors(401)},
                security=staff,
                parameters=PAGE,
                tag="conversations",
            ),
            "post": _op(
                "Create a conversation",
                {
                    "201": {
                        **_json(_ref("Conversation"), "Created"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403),
                },
                body=_ref("Settings"),
                security="admin",
                tag="conversations",
            ),
        },
        "/api/v1/conversations/{conversation_id}": {
            "get": _op(
                "A conversation's settings",
                {"200": _json(_ref("Conversation")), **_errors(404)},
                parameters=[CID],
                tag="conversations",
            ),
            "patch": _op(
                "Change settings (open/close, moderation mode...)",
                {"200": _json(_ref("Conversation")), **_errors(400, 401, 403, 404)},
                body=_ref("Settings"),
                security="admin",
                parameters=[CID],
                tag="conversations",
            ),
        },
        "/api/v1/conversations/{conversation_id}/moderators": {
            "get": _op(
                "The moderator accounts given the conversation (admins moderate every one)",
                {"200": _json(_ref("Moderators")), **_errors(401, 403, 404)},
                security="moderator",
                parameters=[CID],
                tag="conversations",
            ),
            "put": _op(
                "Give the conversation exactly these moderators",
                {"200": _json(_ref("Moderators")), **_errors(400, 401, 403, 404)},
                body={
                    "type": "object",
                    "required": ["account_ids"],
                    "additionalProperties": False,
                    "properties": {"account_ids": {"type": "array", "items": {"type": "integer"}}},
                },
                security="admin",
                parameters=[CID],
                tag="conversations",
            ),
        },
        "/api/v1/conversations/{conversation_id}/next": {
            "get": _op(
                "The next statement for this participant, drawn by routing priority",
                {"200": _json(_ref("Next")), **_errors(400, 403, 404)},
                parameters=[CID, XID],
            ),
        },
        "/api/v1/conversations/{conversation_id}/votes": {
            "post": _op(
                "Vote (replacing an earlier vote); answers with the next statement",
                {"200": _json(_ref("Next")), **_errors(400, 403, 404, 429)},
                body=_ref("Vote"),
                parameters=[CID],
            ),
        },
        "/api/v1/conversations/{conversation_id}/statements": {
            "get": _op(
                "Statements, a page at a time (moderators: any status, ?status=, ?q=)",
                {"200": _json({"type": "object"}), **_errors(400, 404)},
                parameters=[
                    CID,
                    *PAGE,
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                ],
            ),
            "post": _op(
                "Submit a statement (pending under strict moderation)",
                {"201": _json(_ref("Statement"), "Created"), **_errors(400, 403, 404, 409, 429)},
                body=_ref("NewStatement"),
                parameters=[CID],
            ),
        },
        "/api/v1/conversations/{conversation_id}/statements/{sid}": {
            "get": _op(
                "One statement",
                {"200": _json(_ref("Statement")), **_errors(404)},
                parameters=[CID, SID],
            ),
            "patch": _op(
                "Moderate one statement",
                {"200": _json(_ref("Statement")), **_errors(400, 401, 403, 404)},
                body=_ref("Decision"),
                security=staff,
                parameters=[CID, SID],
                tag="moderation",
            ),
        },
        "/api/v1/conversations/{conversation_id}/moderation": {
            "post": _op(
                "Moderate many statements at once (all or none)",
                {"200": _json({"type": "object"}), **_errors(400, 401, 403, 404)},
                body={
                    "allOf": [
                        _ref("Decision"),
                        {
                            "type": "object",
                            "properties": {
                                "statement_ids": {"type": "array", "items": {"type": "integer"}}
                            },
                        },
                    ]
                },
                security=staff,
                parameters=[CID],
                tag="moderation",
            ),
        },
        "/api/v1/conversations/{conversation_id}/moderation/log": {
            "get": _op(
                "Who moderated what, newest first (with each account's name)",
                {"200": _json({"type": "object"}), **_errors(401, 404)},
                security=staff,
                parameters=[CID, *PAGE],
                tag="moderation",
            ),
        },
        "/api/v1/conversations/{conversation_id}/moderation/queue": {
            "get": _op(
                "The moderation queue: a page of one status (pending by default) with the "
                "counts per status, near-duplicates and whether each author is banned",
                {"200": _json(_ref("ModerationQueue")), **_errors(400, 401, 404)},
                security=staff,
                parameters=[
                    CID,
                    *PAGE,
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                ],
                tag="moderation",
            ),
        },
        "/api/v1/conversations/{conversation_id}/participants/{pid}/ban": {
            "put": _op(
                "Ban a participant",
                {"200": _json({"type": "object"}), **_errors(401, 403, 404)},
                security=staff,
                parameters=[CID, PID],
                tag="moderation",
            ),
            "delete": _op(
                "Lift a ban",
                {"200": _json({"type": "object"}), **_errors(401, 403, 404)},
                security=staff,
                parameters=[CID, PID],
                tag="moderation",
            ),
        },
        "/api/v1/conversations/{conversation_id}/me": {
            "get": _op(
                "Where this participant stands: votes, group, position",
                {"200": _json({"type": "object"}), **_errors(400, 403, 404)},
                parameters=[CID, XID],
            ),
        },
        "/api/v1/conversations/{conversation_id}/results": {
            "get": _op(
                "The latest math result; ETag is its tick (304 on If-None-Match)",
                {
                    "200": _json(_ref("ResultsDocument")),
                    "304": {"description": "Not modified"},
                    **_errors(400, 403, 404),
                },
                parameters=[CID, INCLUDE],
                tag="results",
            ),
        },
        "/api/v1/conversations/{conversation_id}/positions": {
            "get": _op(
                "Every participant's place on the map, binary; ETag is the tick",
                {
                    "200": {
                        "description": "little-endian columns: n float32 x, n float32 y, "
                        "n int16 group (-1: none), by pid; x and y NaN when not placed; "
                        "n is the body's length / 10 (also in X-Participants)",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "304": {"description": "Not modified"},
                    **_errors(403, 404),
                },
                parameters=[CID],
                tag="results",
            ),
        },
        "/api/v1/conversations/{conversation_id}/participation": {
            "get": _op(
                "Participation at every published tick, oldest first; ETag is the tick",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "series": {"type": "array", "items": _ref("ParticipationPoint")}
                            },
                        }
                    ),
                    "304": {"description": "Not modified"},
                    **_errors(403, 404),
                },
                parameters=[CID],
                tag="results",
            ),
        },
        "/api/v1/conversations/{conversation_id}/events": {
            "get": _op(
                "Server-sent events: `results` (tick, participation) after each update; "
                "staff streams also `statements` (pending count) when statements change",
                {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(403, 404, 503),
                },
                parameters=[CID],
                tag="results",
            ),
        },
        "/api/v1/conversations/{conversation_id}/export/{name}.csv": {
            "get": _op(
                "One file of the Pol.is export",
                {
                    "200": {
                        "description": "CSV",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 404),
                },
                security=staff,
                parameters=[CID, NAME, EXACT],
                tag="transfer",
            ),
        },
        "/api/v1/conversations/{conversation_id}/export.zip": {
            "get": _op(
                "The whole Pol.is export as a zip",
                {
                    "200": {
                        "description": "zip",
                        "content": {
                            "application/zip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **_errors(400, 401, 404),
                },
                security=staff,
                parameters=[CID, EXACT],
                tag="transfer",
            ),
        },
        "/api/v1/conversations/import": {
            "post": {
                **_op(
                    "Import a Pol.is export (.zip in the body, or multipart field 'file')",
                    {"201": _json(_ref("Conversation"), "Created"), **_errors(400, 401, 403)},
                    security="admin",
                    tag="transfer",
                    parameters=[
                        {
                            "name": "topic",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "The topic (default: the export's)",
                        }
                    ],
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/zip": {"schema": {"type": "string", "format": "binary"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "topic": {"type": "string"},
                                },
                            }
                        },
                    },
                },
            },
        },
        "/api/v1/session": {
            "get": _op(
                "Who is signed in",
                {"200": _json({"type": "object"}), **_errors(401)},
                tag="session",
            ),
            "post": _op(
                "Sign in (sets the session cookie)",
                {"200": _json({"type": "object"}), **_errors(400, 401, 429)},
                body={
                    "type": "object",
                    "required": ["name", "password"],
                    "properties": {"name": {"type": "string"}, "password": {"type": "string"}},
                },
                tag="session",
            ),
            "delete": _op(
                "Sign out: ends this session cookie and every other of the account",
                {"204": {"description": "Signed out"}},
                tag="session",
            ),
        },
        **_account_paths(),
        "/api/v1/openapi.json": {
            "get": _op("This document", {"200": _json({"type": "object"})}, tag="meta"),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "polis-like API",
            "version": __version__,
            "description": "Deliberation at scale. Participants are identified by a signed "
            "cookie (or an xid); staff by a session cookie or a bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "polis_like"},
            },
        },
    }
