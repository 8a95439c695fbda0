"""Admin and moderator accounts: scrypt password hashes and SHA-256-hashed bearer tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from polis_like.errors import InputError

from .db import now_ms
from .models import ROLES, AccountRow, TokenRow

_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms and 16 MB per check


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    given = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(given.hex(), digest)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(12))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_account(
    session: Session, name: str, *, role: str = "admin", password: str | None = None
) -> tuple[AccountRow, str, str]:
    """Make an account; returns it with its password (generated when not given) and a new token.

    Neither the password nor the token is stored in clear, so this is the only time they show.
    """
    name = name.strip()
    if not name or len(name) > 80:
        raise InputError("an account name needs 1 to 80 characters")
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    if find_account(session, name) is not None:
        raise InputError(f"there is already an account named {name!r}")
    password = password or secrets.token_urlsafe(12)
    if len(password) < 8:
        raise InputError("a password needs at least 8 characters")
    account = AccountRow(
        name=name, role=role, password_hash=hash_password(password), created_ms=now_ms()
    )
    session.add(account)
    session.flush()
    token = new_token(session, account)
    return account, password, token


def new_token(session: Session, account: AccountRow) -> str:
    token = "pl_" + secrets.token_urlsafe(32)
    session.add(TokenRow(account_id=account.id, token_hash=token_hash(token), created_ms=now_ms()))
    session.flush()
    return token


def set_password(session: Session, account: AccountRow, password: str) -> None:
    if len(password) < 8:
        raise InputError("a password needs at least 8 characters")
    account.password_hash = hash_password(password)


def authenticate(session: Session, name: str, password: str) -> AccountRow | None:
    account = session.scalar(select(AccountRow).where(AccountRow.name == name))
    if account is None:
        verify_password(password, _dummy_hash())  # the same cost as a wrong password
        return None
    return account if verify_password(password, account.password_hash) else None


def find_account(session: Session, name: str) -> AccountRow | None:
    """The account named ``name``, if there is one."""
    return session.scalar(select(AccountRow).where(AccountRow.name == name))


def get_account(session: Session, account_id: object) -> AccountRow | None:
    """The account of a signed session cookie (None when it is gone or the id is not one)."""
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        return None
    return session.get(AccountRow, account_id)


def account_for_token(session: Session, token: str) -> AccountRow | None:
    return session.scalar(
        select(AccountRow)
        .join(TokenRow, TokenRow.account_id == AccountRow.id)
        .where(TokenRow.token_hash == token_hash(token))
    )
