"""Golden tests: our math against Pol.is's own math on the same votes, for every shared
conversation, all votes at once (static) and replayed in time order in 600 s batches.

The anchor is ``tests/fixtures/polis-math/`` (see its README): what Pol.is's math computes from
the votes of each fixture. The ``group-id`` column of the exports is history (groups stored
under older rules) and is not tested against; ``benchmarks/fidelity.py`` reports it beside.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONVERSATIONS, FIXTURES, engine_inputs

from polis_like.analysis import analyze
from polis_like.fidelity import Reference, compare, reference_path
from polis_like.math import MathParams, MathState, update
from polis_like.math.replay import batches, replay

REFERENCE = FIXTURES / "polis-math"


def ours(conversation, mode, reference):
    if mode == "static":
        return analyze(conversation)
    return analyze(conversation, replay_votes=True, window_s=reference.window_s)


@pytest.mark.parametrize("mode", ["static", "replay"])
@pytest.mark.parametrize("name", CONVERSATIONS)
def test_our_groups_and_statements_are_pol_is_s(name, mode, load_conversation):
    conversation = load_conversation(name)
    reference = Reference.read(reference_path(REFERENCE, name, mode))
    result = ours(conversation, mode, reference)
    row = compare(result, conversation, reference)
    assert (row["k"], result.k) == (reference.k, reference.k)
    assert row["ari"] >= 0.99
    assert row["jaccard"] == 1.0  # the same participants clustered
    assert row["consensus_same"]
    assert row["repness_differ"] == []
    assert row["repness_same"] == reference.k
    assert row["gac_max_diff"] < 1e-9


def test_the_replay_makes_as_many_updates_as_pol_is_s(load_conversation):
    # A batch closes at the first event 600 s or more after the batch's first event.
    for name in CONVERSATIONS:
        conversation = load_conversation(name)
        reference = Reference.read(reference_path(REFERENCE, name, "replay"))
        ordered = conversation.votes.take(conversation.votes.time_order())
        count = sum(1 for _ in batches(ordered.timestamp_ms, int(reference.window_s * 1000)))
        assert count == reference.ticks, name


def test_the_worker_s_way_of_updating_gives_the_replay_s_results(load_conversation):
    # The worker keeps its state between updates and saves it as bytes; fed the same batches,
    # that path gives exactly the replay's result (both call the same update).
    conversation = load_conversation("brexit-consensus")
    window_ms = 600_000
    expected, expected_state = replay(
        conversation.votes, window_ms=window_ms, **engine_inputs(conversation)
    )
    ordered = conversation.votes.take(conversation.votes.time_order())
    state = MathState.initial(MathParams())
    changes = engine_inputs(conversation)
    for part in batches(ordered.timestamp_ms, window_ms):
        result, state = update(state, ordered.take(part), **changes)
        state = MathState.from_bytes(state.to_bytes())
        changes = {}
    assert state.n_updates == expected_state.n_updates == 99
    assert state.smoother == expected_state.smoother
    np.testing.assert_array_equal(result.group, expected.group)
    np.testing.assert_array_equal(result.x, expected.x)
    assert [[r.statement for r in g] for g in result.repness] == [
        [r.statement for r in g] for g in expected.repness
    ]
