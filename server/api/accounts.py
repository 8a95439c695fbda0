"""Accounts (admins only): list, create, disable or enable, new password, revoke or issue
tokens, delete. The rules (who may be disabled or deleted) are storage's.

Passwords and tokens are stored hashed, so a response that makes one is the only time it shows.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from polis_like.errors import InputError
from polis_like.storage import accounts as store

from .common import db, json_body, require, signed_in

blueprint = Blueprint("accounts", __name__)


def _account_json(account: store.AccountSummary) -> dict:
    return {
        "id": account.id,
        "name": account.name,
        "role": account.role,
        "created_ms": account.created_ms,
        "tokens": account.tokens,
        "disabled": account.disabled,
    }


def _summary(session, account) -> store.AccountSummary:
    return store.summary(account, store.token_count(session, account))


def _optional_password(body: dict) -> str | None:
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise InputError("password must be a string")
    return password or None


@blueprint.get("/accounts")
@require("admin")
def list_accounts():
    return jsonify({"accounts": [_account_json(a) for a in store.list_accounts(db())]})


@blueprint.post("/accounts")
@require("admin")
def create_account():
    """A moderator (by default) or admin; the password is generated unless given."""
    body = json_body()
    name, role = body.get("name"), body.get("role", "moderator")
    if not isinstance(name, str) or not isinstance(role, str):
        raise InputError("name and role must be strings")
    session = db()
    account, password, token = store.create_account(
        session, name, role=role, password=_optional_password(body)
    )
    session.commit()
    document = _account_json(_summary(session, account)) | {"password": password, "token": token}
    response = jsonify(document)
    response.status_code = 201
    response.headers["Location"] = url_for(".list_accounts")
    return response


@blueprint.patch("/accounts/<id:account_id>")
@require("admin")
def update_account(account_id: int):
    """``{"disabled": true}`` disables the account (never one's own: 403; never the last admin
    who can sign in: 409); ``false`` enables it again."""
    body = json_body()
    unknown = sorted(set(body) - {"disabled"})
    if unknown:
        raise InputError(f"unknown field: {unknown[0]}")
    disabled = body.get("disabled")
    if not isinstance(disabled, bool):
        raise InputError("disabled must be true or false")
    session = db()
    account = store.account_by_id(session, account_id)
    store.set_disabled(session, account, disabled, by=signed_in())
    session.commit()
    return jsonify(_account_json(_summary(session, account)))


@blueprint.post("/accounts/<id:account_id>/password")
@require("admin")
def reset_password(account_id: int):
    """A new password (generated unless given); the account's session cookies end."""
    body = json_body()
    session = db()
    account = store.account_by_id(session, account_id)
    password = _optional_password(body) or store.generate_password()
    store.set_password(session, account, password)
    session.commit()
    return jsonify({"id": account.id, "name": account.name, "password": password})


@blueprint.post("/accounts/<id:account_id>/tokens")
@require("admin")
def issue_token(account_id: int):
    json_body()  # "{}": a JSON body, which no form on another site can send
    session = db()
    account = store.account_by_id(session, account_id)
    token = store.new_token(session, account)
    session.commit()
    response = jsonify({"id": account.id, "name": account.name, "token": token})
    response.status_code = 201
    return response


@blueprint.delete("/accounts/<id:account_id>/tokens")
@require("admin")
def revoke_tokens(account_id: int):
    session = db()
    account = store.account_by_id(session, account_id)
    revoked = store.revoke_tokens(session, account)
    session.commit()
    return jsonify({"id": account.id, "name": account.name, "revoked": revoked})


@blueprint.delete("/accounts/<id:account_id>")
@require("admin")
def delete_account(account_id: int):
    session = db()
    account = store.account_by_id(session, account_id)
    store.delete_account(session, account, by=signed_in())
    session.commit()
    return "", 204
