"""The engine as a whole: purity, determinism, incremental updates, state, reducers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import engine_inputs

from polis_like.conversation import VoteEvents
from polis_like.math import MathParams, MathState, compute, recompute, update
from polis_like.math.replay import batches, replay


def aligned(reference, other):
    """``other``'s components with each axis's sign set to follow ``reference``'s."""
    signs = np.sign(np.sum(reference.components * other.components, axis=1))
    return signs


def assert_same_result(a, b, atol=1e-8):
    assert a.k == b.k
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.in_conversation, b.in_conversation)
    np.testing.assert_allclose(a.x, b.x, atol=atol)
    np.testing.assert_allclose(a.y, b.y, atol=atol)
    np.testing.assert_allclose(a.priority, b.priority, rtol=1e-7)
    np.testing.assert_allclose(a.group_informed_consensus, b.group_informed_consensus, rtol=1e-9)
    assert [[r.statement for r in g] for g in a.repness] == [
        [r.statement for r in g] for g in b.repness
    ]
    assert {s: [m.statement for m in v] for s, v in a.consensus.items()} == {
        s: [m.statement for m in v] for s, v in b.consensus.items()
    }


def test_math_package_imports_no_web_storage_or_worker_code():
    code = (
        "import sys, polis_like.math, polis_like.math.replay; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'server', 'worker') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_same_votes_give_the_same_result_twice(load_conversation):
    conversation = load_conversation("vtaiwan.uberx")
    first, _ = compute(conversation.votes, **engine_inputs(conversation))
    second, _ = compute(conversation.votes, **engine_inputs(conversation))
    assert_same_result(first, second, atol=0)


def test_shuffled_vote_events_give_the_same_result(load_conversation):
    conversation = load_conversation("scoop-hivemind.biodiversity")
    order = np.random.default_rng(7).permutation(len(conversation.votes))
    base, _ = compute(conversation.votes, **engine_inputs(conversation))
    shuffled, _ = compute(conversation.votes.take(order), **engine_inputs(conversation))
    assert_same_result(base, shuffled)


def test_incremental_updates_equal_a_recompute_from_all_events(load_conversation):
    conversation = load_conversation("brexit-consensus")
    events = conversation.votes.take(conversation.votes.time_order())
    inputs = engine_inputs(conversation)
    state_a = MathState.initial(MathParams(), inputs["n_participants"], inputs["n_statements"])
    state_b = state_a
    parts = list(batches(events.timestamp_ms, 6 * 3600 * 1000))
    assert len(parts) > 10
    for i, part in enumerate(parts):
        masks = dict(moderated_out=inputs["moderated_out"], meta=inputs["meta"]) if i == 0 else {}
        result_a, state_a = update(state_a, events.take(part), **masks)
        result_b, state_b = recompute(state_b, events.take(slice(0, part.stop)), **masks)
        assert_same_result(result_a, result_b)
    assert (state_a.codes != state_b.codes).nnz == 0


def test_incremental_update_matches_a_fresh_computation_of_the_map(load_conversation):
    conversation = load_conversation("canadian-electoral-reform")
    events = conversation.votes.take(conversation.votes.time_order())
    inputs = engine_inputs(conversation)
    half = len(events) // 2
    _, state = compute(events.take(slice(0, half)), **inputs)
    incremental, _ = update(state, events.take(slice(half, None)))
    fresh, _ = compute(events, **inputs)
    # The incremental map keeps the signs of its history; a fresh one picks its own.
    signs = aligned(incremental, fresh)
    np.testing.assert_allclose(incremental.components, fresh.components * signs[:, None], atol=1e-8)
    np.testing.assert_allclose(incremental.x, fresh.x * signs[0], atol=1e-8)
    np.testing.assert_allclose(incremental.y, fresh.y * signs[1], atol=1e-8)
    np.testing.assert_array_equal(
        incremental.group_tallies.seen.sum(0), fresh.group_tallies.seen.sum(0)
    )


def test_state_survives_serialisation_and_the_next_update_is_unchanged(load_conversation):
    conversation = load_conversation("15-per-hour-seattle")
    events = conversation.votes.take(conversation.votes.time_order())
    half = len(events) // 2
    _, state = compute(events.take(slice(0, half)), **engine_inputs(conversation))
    restored = MathState.from_bytes(state.to_bytes())
    direct, _ = update(state, events.take(slice(half, None)))
    via_bytes, _ = update(restored, events.take(slice(half, None)))
    assert_same_result(direct, via_bytes, atol=0)


def _payload_with_header(header):
    """An ``.npz`` payload holding only a JSON header, as to_bytes writes it."""
    import io
    import json

    buffer = io.BytesIO()
    np.savez_compressed(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "payload",
    [
        b"not a state",
        b"",
        MathState.initial(MathParams()).to_bytes()[:60],
        _payload_with_header(None)[:-1],
        np.zeros(3).tobytes(),
    ],
    ids=["text", "empty", "truncated", "truncated-zip", "raw-array"],
)
def test_a_corrupt_state_payload_is_refused_with_a_value_error(payload):
    with pytest.raises(ValueError, match=r"^not a math state"):
        MathState.from_bytes(payload)


def test_a_state_of_another_format_version_is_refused():
    with pytest.raises(ValueError, match="unknown math state version 999"):
        MathState.from_bytes(_payload_with_header({"version": 999}))


def test_map_signs_stay_put_when_votes_arrive(load_conversation):
    conversation = load_conversation("vtaiwan.uberx")
    events = conversation.votes.take(conversation.votes.time_order())
    cut = int(len(events) * 0.9)
    first, state = compute(events.take(slice(0, cut)), **engine_inputs(conversation))
    second, _ = update(state, events.take(slice(cut, None)))
    for axis in range(2):
        assert first.components[axis] @ second.components[axis] > 0.9


def test_banned_participants_are_left_out_of_the_map_and_the_groups(load_conversation):
    conversation = load_conversation("brexit-consensus")
    inputs = engine_inputs(conversation)
    banned = np.zeros(inputs["n_participants"], bool)
    banned[:20] = True
    result, _ = compute(conversation.votes, banned=banned, **inputs)
    assert np.isnan(result.x[:20]).all()
    assert (result.group[:20] == -1).all()
    assert not result.in_conversation[:20].any()


def test_rejected_statements_shape_nothing_but_keep_their_tallies(load_conversation):
    conversation = load_conversation("brexit-consensus")
    inputs = engine_inputs(conversation)
    rejected = inputs["moderated_out"].copy()
    rejected[3] = True
    result, _ = compute(conversation.votes, **{**inputs, "moderated_out": rejected})
    assert result.components[:, 3].tolist() == [0.0, 0.0]
    assert np.isnan(result.group_informed_consensus[3])
    assert all(r.statement != 3 for g in result.repness for r in g)
    assert result.group_tallies.seen[:, 3].sum() > 0


def test_replay_reaches_the_same_matrix_as_a_static_computation(load_conversation):
    conversation = load_conversation("london.youth.policing")
    seen = []
    replayed, state = replay(
        conversation.votes,
        progress=lambda done, total: seen.append(done),
        **engine_inputs(conversation),
    )
    static, _ = compute(conversation.votes, **engine_inputs(conversation))
    assert seen[-1] == len(conversation.votes)
    assert seen == sorted(seen)
    signs = aligned(replayed, static)
    np.testing.assert_allclose(replayed.x, static.x * signs[0], atol=1e-8)
    assert state.n_updates == len(seen)


def test_votes_outside_the_matrix_are_refused():
    events = VoteEvents([1], [5], [0], [1])
    with pytest.raises(ValueError, match="participant"):
        compute(events, n_participants=2, n_statements=1)
    with pytest.raises(ValueError, match="-1, 0 or"):
        compute(VoteEvents([1], [0], [0], [2]), n_participants=1, n_statements=1)


def test_a_conversation_with_no_votes_has_no_groups():
    result, _ = compute(VoteEvents.empty(), n_participants=3, n_statements=2)
    assert result.k == 0
    assert (result.group == -1).all()
    assert result.priority.shape == (2,)


def test_unknown_reducer_is_refused():
    with pytest.raises(ValueError, match="reducer"):
        MathParams(reducer="tsne")


def test_umap_reducer_keeps_neighbours_together(load_conversation):
    from sklearn.manifold import trustworthiness

    from polis_like.math import matrix, pca

    conversation = load_conversation("brexit-consensus")
    inputs = engine_inputs(conversation)
    umap_params = MathParams(reducer="umap", random_state=3)
    result, _ = compute(conversation.votes, params=umap_params, **inputs)
    again, _ = compute(conversation.votes, params=umap_params, **inputs)
    np.testing.assert_array_equal(result.x, again.x)
    linear, _ = compute(conversation.votes, **inputs)
    codes = matrix.latest_votes(
        conversation.votes, inputs["n_participants"], inputs["n_statements"]
    )
    fit = pca.pca(
        codes,
        active_statements=~inputs["moderated_out"],
        active_participants=np.ones(inputs["n_participants"], bool),
    )
    voted = ~np.isnan(result.x)
    scale = pca.sparsity_scale(fit)
    rows = fit.centred()[voted].multiply(scale[voted][:, None]).tocsr()

    def trust(r):
        return trustworthiness(rows, np.c_[r.x[voted], r.y[voted]], n_neighbors=10)

    # A neighbourhood-preserving map: at least as trustworthy as the linear PCA map.
    assert trust(result) > 0.75
    assert trust(result) >= trust(linear) - 0.02
    assert result.k >= 2


def test_a_cold_start_seeds_the_base_clusters_in_the_order_participants_first_voted():
    # Four participants with four different vote rows (so four positions, each its own base
    # cluster). Participant 3 voted first, then 1, 2 and 0: Pol.is's rows, and so its first
    # distinct points and the base clusters' ids, follow that order, not the participant ids.
    rows = {0: [1, 1, 1, -1], 1: [1, -1, -1, 1], 2: [-1, -1, 1, 1], 3: [-1, 1, -1, -1]}
    first_vote = {3: 0, 1: 1, 2: 2, 0: 3}
    cells = [
        (1_000 * first_vote[p] + j, p, j, v)
        for p, votes in rows.items()
        for j, v in enumerate(votes)
    ]
    t, p, s, v = zip(*cells, strict=True)
    result, _ = compute(VoteEvents(t, p, s, v))
    assert result.base_cluster[[3, 1, 2, 0]].tolist() == [0, 1, 2, 3]


def test_the_default_projection_scale_counts_moderated_out_statements_as_pol_is_does(
    load_conversation,
):
    conversation = load_conversation("football-concussions")
    inputs = engine_inputs(conversation)
    assert conversation.moderated_out().any()
    default, _ = compute(conversation.votes, **inputs)
    polis, _ = compute(conversation.votes, **inputs, params=MathParams(projection_scale="polis"))
    visible, _ = compute(
        conversation.votes, **inputs, params=MathParams(projection_scale="visible")
    )
    np.testing.assert_array_equal(default.x, polis.x)
    assert not np.allclose(default.x, visible.x, equal_nan=True)
