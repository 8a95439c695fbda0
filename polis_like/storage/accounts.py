"""Admin and moderator accounts: scrypt password hashes and SHA-256-hashed bearer tokens.

Every rule about who may sign in lives here, for the API and the command line alike: a
password, a bearer token or a session cookie signs nobody in while its account is disabled, a
session cookie also needs the account's current epoch and must be younger than the staff
session lifetime, and the service always keeps an admin who can sign in.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TypeGuard

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from polis_like.errors import Conflict, Forbidden, InputError, NotFound, Unauthorized

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


def session_account(
    session: Session,
    account_id: object,
    epoch: object,
    since_ms: object,
    *,
    lifetime_ms: int,
    at_ms: int | None = None,
) -> AccountRow | None:
    """The account of a session cookie: one of the account's current epoch, issued
    (``since_ms``) less than ``lifetime_ms`` before ``at_ms`` (now), of an account that is not
    disabled; else None."""
    if not _is_int(epoch) or not _is_int(since_ms):
        return None
    if (now_ms() if at_ms is None else at_ms) - since_ms >= lifetime_ms:
        return None
    account = get_account(session, account_id)
    if account is None or account.disabled or epoch != account.session_epoch:
        return None
    return account


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AccountSummary:
    """An account as the admin page lists it: no hashes, how many tokens it holds."""

    id: int
    name: str
    role: str
    created_ms: int
    tokens: int
    disabled: bool


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
    return [summary(account, int(n)) for account, n in rows]


def summary(account: AccountRow, tokens: int) -> AccountSummary:
    """``account`` as :class:`AccountSummary`, holding ``tokens`` bearer tokens."""
    return AccountSummary(
        account.id, account.name, account.role, account.created_ms, tokens, account.disabled
    )


def account_by_id(session: Session, account_id: int) -> AccountRow:
    """The account ``account_id``, else a 404."""
    account = session.get(AccountRow, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    return account


def account_named(session: Session, name: str) -> AccountRow:
    """The account named ``name``, else a 404 (the command line's one-line error)."""
    account = find_account(session, name)
    if account is None:
        raise NotFound(f"no account named {name!r}")
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
    """Delete ``account`` and its tokens. Never oneself (403) nor the last admin who can sign
    in (409): the service would then have nobody to manage it but the command line."""
    if account.id == by.id:
        raise Forbidden("you cannot delete your own account")
    _keep_an_admin(session, account)
    # Foreign keys say CASCADE / SET NULL; deleting tokens here does not rely on SQLite's pragma.
    revoke_tokens(session, account)
    session.delete(account)
    session.flush()


def set_disabled(
    session: Session, account: AccountRow, disabled: bool, *, by: AccountRow | None
) -> None:
    """Disable ``account`` (its password, session cookies and bearer tokens sign nobody in,
    at once) or enable it again (they all work again: nothing was revoked).

    ``by`` is the admin asking, None for the command line. Never oneself (403), nor the last
    admin who can sign in (409), as :func:`delete_account`.
    """
    if disabled == account.disabled:
        return
    if disabled:
        if by is not None and account.id == by.id:
            raise Forbidden("you cannot disable your own account")
        _keep_an_admin(session, account)
    account.disabled = disabled
    session.flush()


def _keep_an_admin(session: Session, account: AccountRow) -> None:
    """409 when ``account`` is the last enabled admin, which deleting or disabling would
    leave the service without."""
    if account.role != "admin" or account.disabled:
        return
    enabled_admins = session.scalar(
        select(func.count())
        .select_from(AccountRow)
        .where(AccountRow.role == "admin", AccountRow.disabled.is_(False))
    )
    if (enabled_admins or 0) <= 1:
        raise Conflict("this is the last admin account that can sign in")


def authenticate(session: Session, name: str, password: str) -> AccountRow:
    """The account of ``name`` and ``password``: 401 ``wrong name or password`` unless both
    are right, then 403 while the account is disabled.

    Every refusal costs one scrypt check, as a success does; only someone who knows the
    password learns that the account is disabled.
    """
    account = session.scalar(select(AccountRow).where(AccountRow.name == name))
    if account is None:
        verify_password(password, _dummy_hash())  # the same cost as a wrong password
        raise Unauthorized("wrong name or password")
    if not verify_password(password, account.password_hash):
        raise Unauthorized("wrong name or password")
    if account.disabled:
        raise Forbidden("this account is disabled")
    return account


def find_account(session: Session, name: str) -> AccountRow | None:
    """The account named ``name``, if there is one."""
    return session.scalar(select(AccountRow).where(AccountRow.name == name))


def get_account(session: Session, account_id: object) -> AccountRow | None:
    """The account of a signed session cookie (None when it is gone or the id is not one)."""
    return session.get(AccountRow, account_id) if _is_int(account_id) else None


def account_for_token(session: Session, token: str) -> AccountRow:
    """The account of a bearer token: 401 when the token is unknown or revoked, or its account
    is disabled (the token works again once the account is enabled)."""
    account = session.scalar(
        select(AccountRow)
        .join(TokenRow, TokenRow.account_id == AccountRow.id)
        .where(TokenRow.token_hash == token_hash(token))
    )
    if account is None:
        raise Unauthorized("unknown or revoked token")
    if account.disabled:
        raise Unauthorized("this account is disabled")
    return account
