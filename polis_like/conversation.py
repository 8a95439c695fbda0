"""The conversation data that the Pol.is export format carries, independent of storage.

Readers (``polis_like.io``) produce a :class:`Conversation`; the math consumes its vote events
as integer arrays; writers turn it back into the five Pol.is files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Vote(IntEnum):
    """A participant's vote on a statement: +1 = agree everywhere in this project."""

    AGREE = 1
    PASS = 0
    DISAGREE = -1


class Moderation(IntEnum):
    """A statement's moderation status, with the values of the Pol.is export."""

    ACCEPTED = 1
    UNMODERATED = 0
    REJECTED = -1


@dataclass
class Statement:
    """One statement ("comment" in Pol.is) of a conversation."""

    id: str
    text: str
    author_id: str | None = None
    created_ms: int | None = None
    moderation: Moderation = Moderation.UNMODERATED
    is_meta: bool = False


@dataclass
class VoteEvents:
    """Every vote event of a conversation as parallel arrays (one entry an event).

    ``participant`` and ``statement`` are indices into ``Conversation.participant_ids`` and
    ``Conversation.statements``. Events need not be in time order; a participant's latest
    vote on a statement (largest timestamp) is the one that counts.
    """

    timestamp_ms: np.ndarray  # int64
    participant: np.ndarray  # int32
    statement: np.ndarray  # int32
    vote: np.ndarray  # int8, +1 / 0 / -1

    def __post_init__(self) -> None:
        self.timestamp_ms = np.asarray(self.timestamp_ms, dtype=np.int64)
        self.participant = np.asarray(self.participant, dtype=np.int32)
        self.statement = np.asarray(self.statement, dtype=np.int32)
        self.vote = np.asarray(self.vote, dtype=np.int8)
        n = len(self.timestamp_ms)
        if not (len(self.participant) == len(self.statement) == len(self.vote) == n):
            raise ValueError("vote event arrays differ in length")

    def __len__(self) -> int:
        return len(self.vote)

    @classmethod
    def empty(cls) -> VoteEvents:
        """No events."""
        return cls(np.empty(0), np.empty(0), np.empty(0), np.empty(0))

    def take(self, index: np.ndarray | slice) -> VoteEvents:
        """The events selected by ``index`` (a slice, boolean mask or index array)."""
        return VoteEvents(
            self.timestamp_ms[index],
            self.participant[index],
            self.statement[index],
            self.vote[index],
        )

    def time_order(self) -> np.ndarray:
        """Indices that sort the events by time, ties broken by their order here."""
        return np.argsort(self.timestamp_ms, kind="stable")


@dataclass
class Conversation:
    """A whole conversation as a Pol.is export describes it.

    ``summary`` holds the key/value rows of ``summary.csv`` (topic, url, description, ...).
    ``participant_ids`` are the export's participant ids in a canonical order (numeric ids
    numerically, then the others as text); ``xids`` the external ids where the export has them.
    ``reference_groups`` maps participant id to the ``group-id`` Pol.is computed (None: not
    clustered), when ``participants-votes.csv`` was read.
    ``has_timestamps`` is False when the votes came from ``participants-votes.csv`` alone.
    """

    summary: dict[str, str] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    participant_ids: list[str] = field(default_factory=list)
    xids: dict[str, str] = field(default_factory=dict)
    votes: VoteEvents = field(default_factory=VoteEvents.empty)
    reference_groups: dict[str, int | None] = field(default_factory=dict)
    has_timestamps: bool = True

    @property
    def topic(self) -> str:
        """The conversation's topic, or an empty string."""
        return self.summary.get("topic", "")

    def statement_index(self) -> dict[str, int]:
        """Map statement id to its index in ``statements``."""
        return {s.id: i for i, s in enumerate(self.statements)}

    def moderated_out(self) -> np.ndarray:
        """Boolean mask over statements: rejected or meta (left out of the map and selections)."""
        return np.array(
            [s.moderation == Moderation.REJECTED or s.is_meta for s in self.statements], dtype=bool
        )

    def is_meta(self) -> np.ndarray:
        """Boolean mask over statements: meta statements."""
        return np.array([s.is_meta for s in self.statements], dtype=bool)


def _is_number(i: str) -> bool:
    return i.isascii() and i.isdigit()


def _numeric_order(i: str) -> tuple[int, str]:
    """Numeric order of a decimal string without ``int()``: no limit on its digits."""
    digits = i.lstrip("0")
    return len(digits), digits


def canonical_ids(ids: set[str] | list[str]) -> list[str]:
    """Order ids canonically: integers numerically first, then any others as text."""
    numeric = sorted((i for i in ids if _is_number(i)), key=_numeric_order)
    other = sorted(i for i in ids if not _is_number(i))
    return numeric + other
