"""Who moderates which conversation: admins every one; a moderator the conversations they
created and the ones an admin gave them."""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, or_, select
from sqlalchemy.orm import Session

from polis_like.errors import InputError

from .conversations import log
from .models import AccountRow, ConversationModeratorRow, ConversationRow

#: How many moderators one conversation may be given in one request.
MAX_MODERATORS = 500


def may_moderate(session: Session, account: AccountRow, conversation_id: int) -> bool:
    """Whether ``account`` may moderate the conversation (see the module's docstring)."""
    if account.role == "admin":
        return True
    return bool(
        session.scalar(
            select(
                exists().where(
                    ConversationRow.id == conversation_id, ConversationRow.owner_id == account.id
                )
                | exists().where(
                    ConversationModeratorRow.conversation_id == conversation_id,
                    ConversationModeratorRow.account_id == account.id,
                )
            )
        )
    )


def moderated_by(account: AccountRow):
    """A condition on :class:`ConversationRow` that holds for the ones ``account`` moderates
    (None for an admin: every one)."""
    if account.role == "admin":
        return None
    given = select(ConversationModeratorRow.conversation_id).where(
        ConversationModeratorRow.account_id == account.id
    )
    return or_(ConversationRow.owner_id == account.id, ConversationRow.id.in_(given))


def moderators_of(session: Session, conversation_id: int) -> list[AccountRow]:
    """The moderator accounts given the conversation, by name."""
    return list(
        session.scalars(
            select(AccountRow)
            .join(ConversationModeratorRow, ConversationModeratorRow.account_id == AccountRow.id)
            .where(ConversationModeratorRow.conversation_id == conversation_id)
            .order_by(AccountRow.name)
        )
    )


def set_moderators(
    session: Session, conversation_id: int, account_ids: list[int], *, by: int | None
) -> list[AccountRow]:
    """Give the conversation exactly these moderators (moderator accounts; admins moderate
    every conversation already); returns them."""
    wanted = sorted(set(account_ids))
    if len(wanted) > MAX_MODERATORS:
        raise InputError(f"at most {MAX_MODERATORS} moderators per conversation")
    found = {
        row.id: row for row in session.scalars(select(AccountRow).where(AccountRow.id.in_(wanted)))
    }
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InputError(f"no account {missing[0]}")
    admins = [found[i].name for i in wanted if found[i].role == "admin"]
    if admins:
        raise InputError(f"{admins[0]} is an admin and moderates every conversation already")
    session.execute(
        delete(ConversationModeratorRow).where(
            ConversationModeratorRow.conversation_id == conversation_id
        )
    )
    if wanted:
        session.execute(
            insert(ConversationModeratorRow),
            [{"conversation_id": conversation_id, "account_id": i} for i in wanted],
        )
    log(session, conversation_id, by, "moderators")
    return moderators_of(session, conversation_id)
