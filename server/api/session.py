"""Staff sign-in: a session cookie from name and password (tokens need no sign-in)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask import session as cookie

from polis_like.errors import InputError, Unauthorized
from polis_like.storage import accounts

from ..ratelimit import client_address, limiter
from .common import cookie_account, current_account, db, json_body, start_session

blueprint = Blueprint("session", __name__)


def _account_json(account) -> dict:
    return {"id": account.id, "name": account.name, "role": account.role}


@blueprint.post("/session")
def sign_in():
    body = json_body()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise InputError("send name and password as strings")
    limiter().check("signin", ip=client_address(), account=name.strip().casefold()[:200])
    # 401 for a wrong name or password; 403 for the right password of a disabled account.
    account = accounts.authenticate(db(), name, password)
    start_session(account)
    return jsonify(_account_json(account))


@blueprint.get("/session")
def whoami():
    account = current_account()
    if account is None:
        raise Unauthorized("not signed in")
    return jsonify(_account_json(account))


@blueprint.delete("/session")
def sign_out():
    """End the session: the account's epoch moves on, so this cookie (and any copy of it, and
    the account's other session cookies) no longer signs anyone in. Bearer tokens stay."""
    if "account" in cookie:
        session = db()
        account = cookie_account(session)
        if account is not None:
            accounts.end_sessions(account)
            session.commit()
    cookie.pop("account", None)
    cookie.pop("epoch", None)
    cookie.pop("since", None)
    return "", 204
