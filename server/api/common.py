"""What every API route shares: the database session, JSON bodies, who is asking."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import replace

from flask import Response, current_app, g, request
from flask import session as cookie
from sqlalchemy.orm import Session

from polis_like.errors import Forbidden, InputError, Unauthorized
from polis_like.storage import accounts, moderators
from polis_like.storage.db import now_ms
from polis_like.storage.models import AccountRow
from polis_like.storage.votes import Who

from ..limits import MAX_ID, parse_json, read_limited, require_media
from ..ratelimit import client_address


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


_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def query_flag(name: str, default: bool) -> bool:
    """The query parameter ``name`` as 1/0 or true/false, else a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    flag = _FLAGS.get(raw)
    if flag is None:
        raise InputError(f"{name} must be 1, 0, true or false")
    return flag


# -- staff ---------------------------------------------------------------------------------


def current_account() -> AccountRow | None:
    """The signed-in admin or moderator: bearer token first, then the session cookie.

    A token of a disabled account is a 401; a session cookie that no longer signs anyone in
    (signed out, too old, its account disabled) is simply no account.
    """
    if "account" in g:
        return g.account
    account = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        account = accounts.account_for_token(db(), token.strip())
    elif "account" in cookie:
        account = cookie_account(db())
    g.account = account
    return account


def cookie_account(session: Session) -> AccountRow | None:
    """The account of the request's session cookie, by the rules of
    :func:`polis_like.storage.accounts.session_account`."""
    return accounts.session_account(
        session,
        cookie.get("account"),
        cookie.get("epoch"),
        cookie.get("since"),
        lifetime_ms=round(current_app.config["STAFF_SESSION_HOURS"] * 3_600_000),
    )


def start_session(account: AccountRow) -> None:
    """Sign ``account`` in with the session cookie. The cookie carries the account's session
    epoch and the time of sign-in: set it only through here, or :func:`current_account` will
    not take the cookie.

    The cookie itself stays a year, for a participant's visitor id beside it; the staff part
    is refused on the server after ``STAFF_SESSION_HOURS``.
    """
    cookie["account"] = account.id
    cookie["epoch"] = account.session_epoch
    cookie["since"] = now_ms()
    cookie.permanent = True
    g.account = account


def signed_in() -> AccountRow:
    """The signed-in account of a route behind :func:`require` (401 without one)."""
    account = current_account()
    if account is None:
        raise Unauthorized("sign in as a moderator or admin, or send a bearer token")
    return account


def check_role(account: AccountRow, role: str, conversation_id: int | None) -> None:
    """Refuse (403) an account without ``role`` (``"admin"``, or ``"moderator"``: a moderator
    or admin), or a moderator not given ``conversation_id`` when there is one."""
    if role == "admin" and account.role != "admin":
        raise Forbidden("this needs an admin account")
    if conversation_id is not None and not moderators.may_moderate(db(), account, conversation_id):
        raise Forbidden(f"this account does not moderate conversation {conversation_id}")


def require(role: str):
    """Route decorator: an admin (``"admin"``) or a moderator or admin (``"moderator"``); on a
    route of one conversation, a moderator given that conversation."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            account = current_account()
            if account is None:
                raise Unauthorized("sign in as a moderator or admin, or send a bearer token")
            check_role(account, role, kwargs.get("conversation_id"))
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # for the tests' walk
        return wrapped

    return decorator


def moderates(conversation_id: int) -> bool:
    """Whether the request comes from an admin or a moderator of the conversation (a wrong
    token counts as nobody here: the routes that ask are open to everyone)."""
    known = g.setdefault("moderates", {})  # asked more than once a request (results, events)
    if conversation_id not in known:
        try:
            account = current_account()
        except Unauthorized:
            account = None
        known[conversation_id] = account is not None and moderators.may_moderate(
            db(), account, conversation_id
        )
    return known[conversation_id]


# -- participants --------------------------------------------------------------------------


def visitor(create: bool) -> str | None:
    """The random id in the participant's signed cookie; set on their first request."""
    value = cookie.get("visitor")
    if value is None and create:
        value = secrets.token_urlsafe(18)
        cookie["visitor"] = value
        cookie.permanent = True
    return value


def claimed(body: dict | None = None) -> Who:
    """Who the request says it is, before the conversation's XID setting is known: the xid it
    sends, else the visitor id of its cookie (None on a first visit)."""
    xid = request.args.get("xid") if body is None else body.get("xid", request.args.get("xid"))
    if xid is not None:
        if not isinstance(xid, str) or not xid.strip() or len(xid) > 200:
            raise InputError("xid must be a non-empty string of at most 200 characters")
        return Who(visitor=None, xid=xid.strip(), origin=origin())
    return Who(visitor=visitor(False), origin=origin())


def admitted(conversation, person: Who, *, create: bool = True) -> Who:
    """``person`` (see :func:`claimed`) under the conversation's XID setting; a first visit
    gets its cookie's visitor id here when ``create``."""
    if person.xid is not None:
        if conversation.xid_mode == "off":
            raise InputError("this conversation does not use XIDs")
        return person
    if conversation.xid_mode == "required":
        raise Forbidden("this conversation needs an xid")
    if person.visitor is None and create:
        return replace(person, visitor=visitor(True))
    return person


def who(conversation, body: dict | None = None, *, create: bool = True) -> Who:
    """How this request names its participant, by the conversation's XID setting."""
    return admitted(conversation, claimed(body), create=create)


def origin() -> str:
    """A keyed hash of the client's network address (as rate limits count it): it tells two
    participants from one address apart from others without storing the address."""
    return _keyed_hash(current_app.config["SECRET_KEY"], client_address())


@functools.lru_cache(maxsize=4096)
def _keyed_hash(key: str, address: str) -> str:
    # Once per address while it keeps voting: every participant request needs it.
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


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
