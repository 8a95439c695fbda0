"""The JSON shapes of conversations and statements in API responses (one place for each)."""

from __future__ import annotations

from polis_like.storage.conversations import STATUS_OF
from polis_like.storage.models import ConversationRow, StatementRow


def statement_json(statement: StatementRow, *, moderator: bool = False) -> dict:
    """A statement; moderators also see its status and author."""
    document = {
        "id": statement.sid,
        "text": statement.text,
        "created_ms": statement.created_ms,
        "is_meta": statement.is_meta,
        "is_seed": statement.is_seed,
    }
    if moderator:
        document["status"] = STATUS_OF[statement.status]
        document["author"] = statement.author_pid
    return document


def conversation_json(conversation: ConversationRow, *, moderator: bool = False) -> dict:
    """A conversation's settings; its moderators also see the invite code."""
    document = {
        "id": conversation.id,
        "topic": conversation.topic,
        "description": conversation.description,
        "is_open": conversation.is_open,
        "moderation": conversation.moderation,
        "write_enabled": conversation.write_enabled,
        "map_enabled": conversation.map_enabled,
        "xid_mode": conversation.xid_mode,
        "created_ms": conversation.created_ms,
    }
    if moderator:
        document["invite_code"] = conversation.invite_code
    return document
