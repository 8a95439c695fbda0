"""What every API route shares: the database session, JSON bodies, who is asking."""

from __future__ import annotations

import functools
import re
import secrets

from flask import Response, current_app, g, request
from flask import session as cookie
from sqlalchemy.orm import Session

from polis_like.errors import Forbidden, InputError, Unauthorized
from polis_like.storage import accounts
from polis_like.storage.models import AccountRow
from polis_like.storage.votes import Who

from ..limits import MAX_ID, parse_json, read_limited, require_media


def db() -> Session:
    """The request's database session (closed when the request ends)."""
    if "db" not in g:
        g.db = current_app.extensions["polis_like.sessions"]()
    return g.db


def json_body() -> dict:
    """The request's JSON object; 415 unless sent as application/json, 413 past the limit,
    a clear 400 for anything else."""
    require_media("application/json")
    body = parse_json(read_limited(current_app.config["MAX_JSON_BYTES"]))
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def integer(value: object, name: str, *, low: int = -MAX_ID - 1, high: int = MAX_ID) -> int:
    """``value`` as an integer from ``low`` to ``high`` (by default what a 32-bit signed column
    holds), else a 400: a larger one would fail in the database, not here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}")
    return value


def identifier(value: object, name: str) -> int:
    """``value`` as the id of a statement, participant or conversation (0 to ``MAX_ID``)."""
    return integer(value, name, low=0, high=MAX_ID)


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    """The query parameter ``name`` as an integer from ``low`` to ``high``, else a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    # Digits only (int() would take "1_000" and other scripts' digits) and few of them, so
    # that a parameter of thousands of digits is refused before it is converted.
    if not re.fullmatch(r"-?[0-9]{1,20}", raw):
        raise InputError(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}")
    return value


# -- staff ---------------------------------------------------------------------------------


def current_account() -> AccountRow | None:
    """The signed-in admin or moderator: bearer token first, then the session cookie."""
    if "account" in g:
        return g.account
    account = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        account = accounts.account_for_token(db(), token.strip())
        if account is None:
            raise Unauthorized("unknown or revoked token")
    elif "account" in cookie:
        # A cookie of an older epoch was ended by a sign-out or a new password.
        account = accounts.session_account(db(), cookie["account"], cookie.get("epoch"))
    g.account = account
    return account


def start_session(account: AccountRow) -> None:
    """Sign ``account`` in with the session cookie. The cookie carries the account's session
    epoch: set it only through here, or :func:`current_account` will not take the cookie."""
    cookie["account"] = account.id
    cookie["epoch"] = account.session_epoch
    cookie.permanent = True
    g.account = account


def signed_in() -> AccountRow:
    """The signed-in account of a route behind :func:`require` (401 without one)."""
    account = current_account()
    if account is None:
        raise Unauthorized("sign in as a moderator or admin, or send a bearer token")
    return account


def require(role: str):
    """Route decorator: an admin (``"admin"``) or a moderator or admin (``"moderator"``)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            account = current_account()
            if account is None:
                raise Unauthorized("sign in as a moderator or admin, or send a bearer token")
            if role == "admin" and account.role != "admin":
                raise Forbidden("this needs an admin account")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def is_staff() -> bool:
    try:
        return current_account() is not None
    except Unauthorized:
        return False


# -- participants --------------------------------------------------------------------------


def visitor(create: bool) -> str | None:
    """The random id in the participant's signed cookie; set on their first request."""
    value = cookie.get("visitor")
    if value is None and create:
        value = secrets.token_urlsafe(18)
        cookie["visitor"] = value
        cookie.permanent = True
    return value


def who(conversation, body: dict | None = None, *, create: bool = True) -> Who:
    """How this request names its participant, by the conversation's XID setting."""
    xid = request.args.get("xid") if body is None else body.get("xid", request.args.get("xid"))
    if xid is not None:
        if not isinstance(xid, str) or not xid.strip() or len(xid) > 200:
            raise InputError("xid must be a non-empty string of at most 200 characters")
        if conversation.xid_mode == "off":
            raise InputError("this conversation does not use XIDs")
        return Who(visitor=None, xid=xid.strip())
    if conversation.xid_mode == "required":
        raise Forbidden("this conversation needs an xid")
    return Who(visitor=visitor(create))


def not_modified(etag: str) -> Response | None:
    """A 304 answer when the request's If-None-Match already names ``etag``, else None.

    Compared weakly, as RFC 9110 asks of If-None-Match: the gzip variant's ``W/"..."`` (see
    server/compress.py) matches the strong tag of the same document.
    """
    sent = request.headers.get("If-None-Match", "").split(",")
    if etag.removeprefix("W/") in {tag.strip().removeprefix("W/") for tag in sent}:
        return Response(status=304, headers={"ETag": etag})
    return None


def tick_etag(conversation_id: int, tick: int) -> str:
    """The ETag of what a conversation's result of ``tick`` alone decides."""
    return f'"{conversation_id}-{tick}"'
