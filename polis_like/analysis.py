"""Run the math on a conversation read from a Pol.is export: ids in, indices to the engine."""

from __future__ import annotations

import os
from collections.abc import Callable

from .conversation import Conversation
from .io import read_export
from .math import MathParams, MathResult, compute
from .math.replay import replay


def analyze(
    conversation: Conversation,
    *,
    reducer: str = "pca",
    seed: int = 0,
    replay_votes: bool = False,
    window_s: float = 10.0,
    projection_scale: str = "polis",
    progress: Callable[[int, int], None] | None = None,
) -> MathResult:
    """The math's result for a whole conversation (static, or replayed in time order)."""
    params = MathParams(reducer=reducer, random_state=seed, projection_scale=projection_scale)
    n_participants, n_statements = len(conversation.participant_ids), len(conversation.statements)
    moderated_out, meta = conversation.moderated_out(), conversation.is_meta()
    if replay_votes:
        result, _ = replay(
            conversation.votes,
            n_participants=n_participants,
            n_statements=n_statements,
            moderated_out=moderated_out,
            meta=meta,
            params=params,
            window_ms=int(window_s * 1000),
            progress=progress,
        )
    else:
        result, _ = compute(
            conversation.votes,
            n_participants=n_participants,
            n_statements=n_statements,
            moderated_out=moderated_out,
            meta=meta,
            params=params,
        )
    return result


def analyze_export(
    path: str | os.PathLike[str],
    *,
    reducer: str = "pca",
    seed: int = 0,
    replay: bool = False,
    window_s: float = 10.0,
    projection_scale: str = "polis",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Conversation, MathResult]:
    """Read an export and analyse it."""
    conversation = read_export(path)
    return conversation, analyze(
        conversation,
        reducer=reducer,
        seed=seed,
        replay_votes=replay,
        window_s=window_s,
        projection_scale=projection_scale,
        progress=progress,
    )
