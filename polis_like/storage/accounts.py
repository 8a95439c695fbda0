"""Admin and moderator accounts: scrypt password hashes and SHA-256-hashed bearer tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from polis_like.errors import Conflict, Forbidden, InputError, NotFound

from .db import now_ms
from .models import ROLES, AccountRow, TokenRow

#: The shortest password accepted (a generated one is 16 characters).
PASSWORD_MIN = 8

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
        raise Conflict(f"there is already an account named {name!r}")
    password = password or generate_password()
    check_password(password)
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


def generate_password() -> str:
    """A random password of 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def check_password(password: str) -> None:
    """400 unless ``password`` is long enough (and not absurdly long: scrypt reads it all)."""
    if not PASSWORD_MIN <= len(password) <= 1000:
        raise InputError(f"a password needs at least {PASSWORD_MIN} characters (and at most 1000)")


def set_password(session: Session, account: AccountRow, password: str) -> None:
    """A new password; it also ends the account's session cookies (see :func:`end_sessions`)."""
    check_password(password)
    account.password_hash = hash_password(password)
    end_sessions(account)


def end_sessions(account: AccountRow) -> None:
    """Invalidate every session cookie of ``account``: each carries the epoch it was issued in,
    and a cookie of an older epoch no longer signs anyone in."""
    account.session_epoch = (account.session_epoch or 0) + 1


def session_account(session: Session, account_id: object, epoch: object) -> AccountRow | None:
    """The account of a session cookie, if the cookie is of the account's current epoch."""
    account = get_account(session, account_id)
    if account is None or isinstance(epoch, bool) or not isinstance(epoch, int):
        return None
    return account if epoch == account.session_epoch else None


@dataclass(frozen=True)
class AccountSummary:
    """An account as the admin page lists it: no hashes, how many tokens it holds."""

    id: int
    name: str
    role: str
    created_ms: int
    tokens: int


def list_accounts(session: Session) -> list[AccountSummary]:
    """Every account by name, with its number of bearer tokens."""
    counts = (
        select(TokenRow.account_id, func.count().label("n"))
        .group_by(TokenRow.account_id)
        .subquery()
    )
    rows = session.execute(
        select(AccountRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.account_id == AccountRow.id)
        .order_by(AccountRow.name)
    )
    return [
        AccountSummary(account.id, account.name, account.role, account.created_ms, int(n))
        for account, n in rows
    ]


def account_by_id(session: Session, account_id: int) -> AccountRow:
    """The account ``account_id``, else a 404."""
    account = session.get(AccountRow, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    return account


def token_count(session: Session, account: AccountRow) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(TokenRow).where(TokenRow.account_id == account.id)
        )
        or 0
    )


def revoke_tokens(session: Session, account: AccountRow) -> int:
    """Delete every bearer token of ``account``; how many there were."""
    result = session.execute(delete(TokenRow).where(TokenRow.account_id == account.id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_account(session: Session, account: AccountRow, *, by: AccountRow) -> None:
    """Delete ``account`` and its tokens. Never oneself (403) nor the last admin (409): the
    service would then have nobody to manage it but the command line."""
    if account.id == by.id:
        raise Forbidden("you cannot delete your own account")
    if account.role == "admin":
        admins = session.scalar(
            select(func.count()).select_from(AccountRow).where(AccountRow.role == "admin")
        )
        if (admins or 0) <= 1:
            raise Conflict("this is the last admin account")
    # Foreign keys say CASCADE / SET NULL; deleting tokens here does not rely on SQLite's pragma.
    revoke_tokens(session, account)
    session.delete(account)
    session.flush()


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
