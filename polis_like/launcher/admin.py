"""``polis-like admin``: accounts from the command line, by the rules of the accounts API.

Every rule (names, password lengths, the last admin who can sign in) is
:mod:`polis_like.storage.accounts`'s; a refusal is a :class:`~polis_like.errors.PolisLikeError`,
which ``main`` prints as one line with exit status 2. The command line has no signed-in
account, so "not oneself" does not apply here: whoever runs it owns the installation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SHOWN_ONCE = "(shown once: only its hash is stored)"


def add_commands(commands, url_help: str) -> None:
    """The ``admin`` command and its actions, on the subparsers ``commands``."""
    admin = commands.add_parser("admin", help="manage admin and moderator accounts")
    actions = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[[argparse.Namespace], int], help: str):
        parser = actions.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        if name != "list":
            parser.add_argument("name", metavar="NAME", help="the account's name")
        parser.add_argument("--database-url", help=url_help)
        parser.set_defaults(handler=handler)
        return parser

    action("list", _list, "list every account: role, whether it is disabled, tokens, created")
    create = action("create", _create, "make an account; prints its password and an API token once")
    create.add_argument("--role", choices=("admin", "moderator"), default="admin")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of generating one",
    )
    action(
        "disable",
        _disable,
        "stop an account signing in: its password, session cookies and API tokens stop working",
    )
    action("enable", _enable, "let a disabled account sign in again (its tokens work again)")
    password = action(
        "password", _password, "set a new password (printed once) and end its session cookies"
    )
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from stdin instead of generating one",
    )
    action("token", _token, "make a new API token for the account; prints it once")
    action("revoke-tokens", _revoke_tokens, "revoke every API token of the account")


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    """A session on the migrated database of ``--database-url`` (else the settings')."""
    from ..storage.db import session_factory
    from ..storage.migrate import migrated_engine

    with migrated_engine(args.database_url) as engine, session_factory(engine)() as session:
        yield session


def _read_password() -> str:
    """The password of ``--password-stdin``: typed at a prompt without echo on a terminal,
    else one line of stdin without its line end. Checked before anything is written."""
    from ..storage.accounts import check_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    check_password(password)
    return password


def _shown(name: str) -> str:
    """``name`` quoted as the messages show it (any control character escaped)."""
    return repr(name)


def _list(args: argparse.Namespace) -> int:
    from ..storage import accounts

    with _session(args) as session:
        rows = accounts.list_accounts(session)
    if not rows:
        print("no accounts yet: `polis-like admin create NAME` makes one")
        return 0
    table = [("NAME", "ROLE", "STATE", "TOKENS", "CREATED (UTC)")] + [
        (
            a.name if a.name.isprintable() else _shown(a.name),
            a.role,
            "disabled" if a.disabled else "enabled",
            str(a.tokens),
            datetime.fromtimestamp(a.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
        )
        for a in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _create(args: argparse.Namespace) -> int:
    from ..storage import accounts

    given = _read_password() if args.password_stdin else None
    with _session(args) as session:
        account, password, token = accounts.create_account(
            session, args.name, role=args.role, password=given
        )
        session.commit()
        print(f"created {account.role} {_shown(account.name)}")
    if given is None:
        print(f"password: {password}")
    print(f"API token: {token}")
    print("(shown once: only their hashes are stored)")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from ..storage import accounts

    with _session(args) as session:
        account = accounts.account_named(session, args.name)
        was = account.disabled
        accounts.set_disabled(session, account, disabled, by=None)
        session.commit()
        name = f"{account.role} {_shown(account.name)}"
    if was == disabled:
        print(f"{name} was already {'disabled' if disabled else 'enabled'}")
    elif disabled:
        print(f"disabled {name}: its password, session cookies and API tokens no longer work")
    else:
        print(f"enabled {name}: its password, session cookies and API tokens work again")
    return 0


def _disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


def _enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)


def _password(args: argparse.Namespace) -> int:
    from ..storage import accounts

    given = _read_password() if args.password_stdin else None
    with _session(args) as session:
        account = accounts.account_named(session, args.name)
        password = accounts.generate_password() if given is None else given
        accounts.set_password(session, account, password)
        session.commit()
        name = _shown(account.name)
    print(f"new password for {name}; its session cookies have ended")
    if given is None:
        print(f"password: {password}")
        print(SHOWN_ONCE)
    return 0


def _token(args: argparse.Namespace) -> int:
    from ..storage import accounts

    with _session(args) as session:
        account = accounts.account_named(session, args.name)
        token = accounts.new_token(session, account)
        session.commit()
        name, disabled = _shown(account.name), account.disabled
    print(f"new API token for {name}: {token}")
    print(SHOWN_ONCE)
    if disabled:
        print(f"{name} is disabled: the token works once it is enabled")
    return 0


def _revoke_tokens(args: argparse.Namespace) -> int:
    from ..storage import accounts

    with _session(args) as session:
        account = accounts.account_named(session, args.name)
        revoked = accounts.revoke_tokens(session, account)
        session.commit()
        name = _shown(account.name)
    print(f"revoked {revoked} API token{'' if revoked == 1 else 's'} of {name}")
    return 0
