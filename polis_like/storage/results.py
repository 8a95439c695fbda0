"""The results document: what the worker publishes for a conversation and every reader reads.

One declaration (the dataclasses below) gives the JSON that ``GET /results`` serves, its
parsing, its JSON Schema in the OpenAPI document and its field reference in ``docs/api.md``.
``VERSION`` grows when a field changes meaning or goes away; adding a field keeps it.

Per-participant positions are stored beside the document, in a fixed-width binary form (see
:func:`positions_blob`), so that the document stays small at 100k participants and one
participant's place is read from the database without reading everyone's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from polis_like.report import group_name

from ._document import doc, field_reference, from_plain, json_schema, to_plain

# to_plain: any part of the document as JSON; json_schema and field_reference: for the docs
__all__ = ["ResultsDocument", "field_reference", "json_schema", "to_plain"]
from .models import ResultRow

if TYPE_CHECKING:  # the math is imported by what computes a result, not by what reads one
    from polis_like.math import MathResult
    from polis_like.math.stats import MajorityStatement, RepStatement

VERSION = 1


@dataclass(frozen=True)
class Participation:
    """How many took part, at the time of the result."""

    participants: int = doc("participants who voted or wrote a statement")
    votes: int = doc("vote events, changed votes included")
    statements: int = doc("statements of every status")
    accepted: int = doc("accepted statements")
    pending: int = doc("statements waiting for moderation")
    rejected: int = doc("rejected statements")


@dataclass(frozen=True)
class Representative:
    """A statement that sets a group apart, with the numbers that chose it (Pol.is repness)."""

    statement: int = doc("the statement's id")
    direction: str = doc("'agree' or 'disagree': how the group differs from the rest")
    n_success: int = doc("group members who voted that way")
    n_trials: int = doc("group members who saw the statement")
    p_success: float | None = doc("(n_success + 1) / (n_trials + 2)")
    p_test: float | None = doc("z-score of p_success against one half")
    repness: float | None = doc("p_success over the same ratio among everyone else")
    repness_test: float | None = doc("z-score of the difference between the two proportions")
    metric: float | None = doc("repness * repness_test * p_success * p_test: the ranking")
    best_agree: bool = doc("chosen as the group's best agreed statement (Pol.is best-agree)")


@dataclass(frozen=True)
class GroupVotes:
    """A group's votes on every statement, by statement id (list index)."""

    agree: list[int] = doc("members who agree")
    disagree: list[int] = doc("members who disagree")
    seen: list[int] = doc("members who voted at all (agree, disagree or pass)")


@dataclass(frozen=True)
class Group:
    """An opinion group."""

    id: int = doc("0, 1, ...: the group's index in this result")
    name: str = doc("the group's letter, A, B, C...")
    size: int = doc("participants in the group")
    representative: list[Representative] = doc("the statements that set the group apart")
    votes: GroupVotes = doc("the group's votes on every statement")


@dataclass(frozen=True)
class BaseCluster:
    """One of the small clusters the groups are made of (Pol.is base clusters)."""

    x: float | None = doc("the centre on the map's first axis")
    y: float | None = doc("the centre on the map's second axis")
    size: int = doc("participants in the cluster")
    group: int = doc("the group it belongs to (-1: none)")


@dataclass(frozen=True)
class Majority:
    """A statement most of everyone agrees (or disagrees) with."""

    statement: int = doc("the statement's id")
    n_success: int = doc("participants who voted that way")
    n_trials: int = doc("participants who saw the statement")
    p_success: float | None = doc("(n_success + 1) / (n_trials + 2)")
    p_test: float | None = doc("z-score of p_success against one half")


@dataclass(frozen=True)
class StatementResult:
    """The math's view of one statement."""

    x: float | None = doc("the statement's projection on the map's first axis")
    y: float | None = doc("the statement's projection on the map's second axis")
    extremity: float | None = doc("how far the statement pulls participants apart")
    priority: float | None = doc("the routing weight of the statement (Pol.is priority)")
    moderated_out: bool = doc("left out of the math (rejected, or pending under strict)")
    agree: int = doc("participants who agree")
    disagree: int = doc("participants who disagree")
    passes: int = doc("participants who passed", name="pass")
    group_informed_consensus: float | None = doc(
        "the product over groups of each group's agree probability"
    )


@dataclass(frozen=True)
class ResultsDocument:
    """A conversation's math result at one tick."""

    version: int = doc(f"the document's format version ({VERSION})")
    tick: int = doc("1, 2, ...: grows by one with every published result")
    computed_ms: int = doc("when the result was published, in ms since the Unix epoch")
    duration_ms: float = doc("how long the computation took")
    participation: Participation = doc("counts at the time of the result")
    n_participants: int = doc("rows of the vote matrix (every pid so far)")
    n_in_conversation: int = doc("participants with enough votes to be placed and clustered")
    n_votes: int = doc("votes that count (each participant's latest on each statement)")
    k: int = doc("the number of opinion groups")
    groups: list[Group] = doc("the opinion groups")
    base_clusters: list[BaseCluster] = doc("the base clusters the groups are made of")
    consensus: dict[str, list[Majority]] = doc(
        "'agree' and 'disagree': statements with a majority of everyone"
    )
    statements: dict[str, StatementResult] = doc("every statement, by id")
    silhouettes: dict[str, float | None] = doc("the silhouette of each k tried, by k")

    def to_json(self) -> str:
        """The compact JSON text (NaN and infinities as null)."""
        return json.dumps(
            to_plain(self), separators=(",", ":"), allow_nan=False, ensure_ascii=False
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ResultsDocument:
        """Parse a stored document; :class:`~._document.DocumentError` if it has another shape."""
        return from_plain(cls, json.loads(text))


def _number(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _representative(rep: RepStatement) -> Representative:
    return Representative(
        statement=rep.statement,
        direction=rep.direction,
        n_success=rep.n_success,
        n_trials=rep.n_trials,
        p_success=_number(rep.p_success),
        p_test=_number(rep.p_test),
        repness=_number(rep.repness),
        repness_test=_number(rep.repness_test),
        metric=_number(rep.metric),
        best_agree=rep.best_agree,
    )


def _majority(item: MajorityStatement) -> Majority:
    return Majority(
        statement=item.statement,
        n_success=item.n_success,
        n_trials=item.n_trials,
        p_success=_number(item.p_success),
        p_test=_number(item.p_test),
    )


def build_document(
    result: MathResult,
    *,
    tick: int,
    computed_ms: int,
    duration_ms: float,
    participation: Participation,
) -> ResultsDocument:
    """The document of a math result. Statements and participants are named by sid and pid."""
    group_of_base = np.full(len(result.base_sizes), -1, np.int64)
    member = result.base_cluster >= 0
    group_of_base[result.base_cluster[member]] = result.group[member]
    tallies = result.group_tallies
    everyone = tallies.total()
    statements = {}
    for sid in range(result.n_statements):
        seen = int(everyone.seen[0, sid])
        agree, disagree = int(everyone.agree[0, sid]), int(everyone.disagree[0, sid])
        statements[str(sid)] = StatementResult(
            x=_number(result.statement_xy[sid, 0]),
            y=_number(result.statement_xy[sid, 1]),
            extremity=_number(result.extremity[sid]),
            priority=_number(result.priority[sid]),
            moderated_out=bool(result.moderated_out[sid]),
            agree=agree,
            disagree=disagree,
            passes=seen - agree - disagree,
            group_informed_consensus=_number(result.group_informed_consensus[sid]),
        )
    groups = [
        Group(
            id=g,
            name=group_name(g),
            size=int((result.group == g).sum()),
            representative=[_representative(r) for r in reps],
            votes=GroupVotes(
                agree=tallies.agree[g].tolist(),
                disagree=tallies.disagree[g].tolist(),
                seen=tallies.seen[g].tolist(),
            ),
        )
        for g, reps in enumerate(result.repness)
    ]
    return ResultsDocument(
        version=VERSION,
        tick=tick,
        computed_ms=computed_ms,
        duration_ms=round(duration_ms, 1),
        participation=participation,
        n_participants=result.n_participants,
        n_in_conversation=int(result.in_conversation.sum()),
        n_votes=result.n_votes,
        k=result.k,
        groups=groups,
        base_clusters=[
            BaseCluster(x=_number(c[0]), y=_number(c[1]), size=int(s), group=int(g))
            for c, s, g in zip(
                result.base_centres.tolist(),
                result.base_sizes.tolist(),
                group_of_base.tolist(),
                strict=True,
            )
        ],
        consensus={side: [_majority(m) for m in items] for side, items in result.consensus.items()},
        statements=statements,
        silhouettes={str(k): _number(s) for k, s in result.silhouettes.items()},
    )


# -- positions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Positions:
    """Every participant's place on the map, by pid (NaN: not placed; group -1: not clustered)."""

    x: np.ndarray  # float32
    y: np.ndarray  # float32
    group: np.ndarray  # int16


#: Bytes per participant in the stored positions: float32 x, float32 y, int16 group.
POSITION_BYTES = 10


def positions_blob(result: MathResult) -> bytes:
    """Each participant's x, y and group as columns, little-endian: n float32 x, then n
    float32 y, then n int16 group (10 n bytes; NaN: not placed, -1: not clustered).

    Columns, so that a browser views each as a typed array without copying (the offsets 0,
    4n and 8n are aligned for their types) and the positions API serves the stored bytes as
    they are; fixed width, so that one participant's place is three short slices of the
    stored value (:func:`position_of`), whatever the number of participants.
    """
    return b"".join(
        (
            np.ascontiguousarray(result.x, dtype="<f4").tobytes(),
            np.ascontiguousarray(result.y, dtype="<f4").tobytes(),
            np.ascontiguousarray(result.group, dtype="<i2").tobytes(),
        )
    )


def read_positions(blob: bytes) -> Positions:
    """The positions of :func:`positions_blob`'s form."""
    n = len(blob) // POSITION_BYTES
    return Positions(
        x=np.frombuffer(blob, "<f4", n, 0),
        y=np.frombuffer(blob, "<f4", n, 4 * n),
        group=np.frombuffer(blob, "<i2", n, 8 * n),
    )


def _slice(blob, start, length: int):
    """``length`` bytes of ``blob`` from the 0-based ``start``, in SQL (both databases)."""
    return func.substr(blob, start + 1, length)


def position_of(
    session: Session, conversation_id: int, tick: int, pid: int
) -> tuple[float, float, int | None] | None:
    """(x, y, group) of one participant in the result of ``tick``, or None when they are not
    on the map (or the result is not stored). Reads 10 bytes, not every participant's."""
    blob, size = ResultRow.positions, func.length(ResultRow.positions)
    row = session.execute(
        select(
            size.label("size"),
            _slice(blob, 4 * pid, 4).label("x"),
            _slice(blob, size * 2 // 5 + 4 * pid, 4).label("y"),
            _slice(blob, size * 4 // 5 + 2 * pid, 2).label("group"),
        ).where(ResultRow.conversation_id == conversation_id, ResultRow.tick == tick)
    ).first()
    if row is None or pid >= row.size // POSITION_BYTES:
        return None
    x = float(np.frombuffer(bytes(row.x), "<f4")[0])
    if not np.isfinite(x):
        return None
    group = int(np.frombuffer(bytes(row.group), "<i2")[0])
    return x, float(np.frombuffer(bytes(row.y), "<f4")[0]), group if group >= 0 else None


# -- reading ----------------------------------------------------------------------------------


def latest_text(session: Session, conversation_id: int) -> tuple[int, str | None]:
    """The latest tick and its document as stored JSON text ((0, None) before the first)."""
    row = session.execute(
        select(ResultRow.tick, ResultRow.result)
        .where(ResultRow.conversation_id == conversation_id)
        .order_by(ResultRow.tick.desc())
        .limit(1)
    ).first()
    return (row.tick, row.result) if row else (0, None)


def read_document(session: Session, conversation_id: int, tick: int) -> ResultsDocument | None:
    """The document of ``tick``, or None when it is not (or no longer) stored."""
    text = session.scalar(
        select(ResultRow.result).where(
            ResultRow.conversation_id == conversation_id, ResultRow.tick == tick
        )
    )
    return ResultsDocument.from_json(text) if text is not None else None


def read_summary(session: Session, conversation_id: int, tick: int) -> dict | None:
    """``computed_ms``, ``k`` and ``participation`` of the document of ``tick`` (None when it
    is not stored), without building the whole document: the event streams' ``results``
    event, read by every web process on every tick."""
    text = session.scalar(
        select(ResultRow.result).where(
            ResultRow.conversation_id == conversation_id, ResultRow.tick == tick
        )
    )
    if text is None:
        return None
    plain = json.loads(text)
    return {key: plain[key] for key in ("computed_ms", "k", "participation")}


def priorities(document: ResultsDocument | None) -> np.ndarray:
    """Routing priority by sid in a result (empty when there is none)."""
    if document is None:
        return np.empty(0)
    values = np.zeros(len(document.statements))
    for sid, statement in document.statements.items():
        values[int(sid)] = statement.priority or 0.0
    return values


def positions_bytes_at(session: Session, conversation_id: int, tick: int) -> bytes | None:
    """Every participant's position in the result of ``tick``, as stored (the form of
    :func:`positions_blob`); None when it is not stored."""
    blob = session.scalar(
        select(ResultRow.positions).where(
            ResultRow.conversation_id == conversation_id, ResultRow.tick == tick
        )
    )
    return bytes(blob) if blob is not None else None


def positions_at(session: Session, conversation_id: int, tick: int) -> Positions | None:
    """Every participant's position in the result of ``tick`` (None when it is not stored)."""
    blob = positions_bytes_at(session, conversation_id, tick)
    return read_positions(blob) if blob is not None else None


def latest_groups(session: Session, conversation_id: int) -> tuple[Positions, int] | None:
    """The latest result's positions and how many were in the conversation (None: no result)."""
    row = session.execute(
        select(ResultRow.result, ResultRow.positions)
        .where(ResultRow.conversation_id == conversation_id)
        .order_by(ResultRow.tick.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return read_positions(row.positions), ResultsDocument.from_json(row.result).n_in_conversation
