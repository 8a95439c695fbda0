"""The vote matrix, who is clustered, PCA and the projection, on toys worked by hand.

Spec sections 1-5. The statistics are in test_math_stats.py, k-means and the k smoother in
test_math_clustering.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from polis_like.conversation import VoteEvents
from polis_like.math import compute, update
from polis_like.math import pca as pca_module
from polis_like.math.matrix import (
    AGREE_CODE,
    DISAGREE_CODE,
    PASS_CODE,
    in_conversation,
    latest_votes,
)
from polis_like.math.pca import pca, project_participants, project_statements

A, D, P, _ = 1, -1, 0, None  # agree, disagree, pass, missing


def _events(cells, start=0):
    """Vote events from (participant, statement, vote) cells, one millisecond apart."""
    p, s, v = zip(*cells, strict=True)
    return VoteEvents(np.arange(start, start + len(v)), p, s, v)


def _codes(rows):
    """Latest-vote codes of a toy matrix given as rows of A / D / P / _ (missing)."""
    cells = [(i, j, v) for i, row in enumerate(rows) for j, v in enumerate(row) if v is not None]
    return latest_votes(_events(cells), len(rows), len(rows[0]))


def _counting(counts, n_statements):
    """Codes where participant i agrees with the first counts[i] statements."""
    cells = [(i, j, A) for i, c in enumerate(counts) for j in range(c)]
    return latest_votes(_events(cells), len(counts), n_statements)


# -- 1. Votes -------------------------------------------------------------------------------


def test_votes_are_stored_as_codes_agree_3_pass_2_disagree_1_and_missing_absent():
    assert (AGREE_CODE, PASS_CODE, DISAGREE_CODE) == (3, 2, 1)
    codes = _codes([[A, P, _], [D, _, _]])
    assert codes.toarray().tolist() == [[3, 2, 0], [1, 0, 0]]
    assert codes.nnz == 3  # a missing vote is not stored; a pass is
    assert codes.data.dtype == np.int8


def test_the_latest_vote_wins_whatever_the_order_of_the_events():
    # Participant 0 on statement 0: agree at 100, disagree at 200, pass at 300 -> pass.
    # Participant 1 on statement 0: disagree at 10, agree at 50 -> agree.
    events = VoteEvents([200, 50, 300, 10, 100], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [D, A, P, D, A])
    assert latest_votes(events, 2, 1).toarray().tolist() == [[PASS_CODE], [AGREE_CODE]]


def test_of_votes_at_the_same_time_the_larger_wins_whatever_the_order():
    for votes in itertools.permutations([D, A, P]):
        events = VoteEvents([100, 100, 100], [0, 0, 0], [0, 0, 0], votes)
        assert latest_votes(events, 1, 1).toarray().tolist() == [[AGREE_CODE]], votes
    for votes in itertools.permutations([D, P]):
        events = VoteEvents([100, 100], [0, 0], [0, 0], votes)
        assert latest_votes(events, 1, 1).toarray().tolist() == [[PASS_CODE]], votes
    # A later smaller vote still beats an earlier larger one.
    events = VoteEvents([100, 100, 101], [0, 0, 0], [0, 0, 0], [A, P, D])
    assert latest_votes(events, 1, 1).toarray().tolist() == [[DISAGREE_CODE]]


def test_large_inputs_sort_by_counting_to_the_very_same_matrix(monkeypatch, load_conversation):
    # vtaiwan's votes, twice over in a shuffled order with revotes at the same millisecond:
    # the counting sort (used from COUNTING_SORT_MIN events) keeps the same votes, in the
    # same order, as the argsort does.
    from polis_like.math import matrix

    votes = load_conversation("vtaiwan.uberx").votes
    rng = np.random.default_rng(0)
    revotes = votes.take(rng.permutation(len(votes)))
    revotes.vote = rng.integers(-1, 2, len(votes)).astype(np.int8)
    both = VoteEvents(
        np.concatenate([votes.timestamp_ms, revotes.timestamp_ms]),
        np.concatenate([votes.participant, revotes.participant]),
        np.concatenate([votes.statement, revotes.statement]),
        np.concatenate([votes.vote, revotes.vote]),
    )
    events = both.take(rng.permutation(len(both)))
    shape = (int(events.participant.max()) + 1, int(events.statement.max()) + 1)
    by_argsort = (matrix.latest_index(events), matrix.latest_votes(events, *shape))
    monkeypatch.setattr(matrix, "COUNTING_SORT_MIN", 1)
    by_counting = (matrix.latest_index(events), matrix.latest_votes(events, *shape))
    assert np.array_equal(by_counting[0], by_argsort[0])
    assert (by_counting[1] != by_argsort[1]).nnz == 0
    assert np.array_equal(by_counting[1].indptr, by_argsort[1].indptr)
    assert np.array_equal(by_counting[1].indices, by_argsort[1].indices)


# -- 3. Who is clustered --------------------------------------------------------------------


def _in(counts, n_statements, *, previous=None, banned=None):
    codes = _counting(counts, n_statements)
    banned = np.zeros(len(counts), bool) if banned is None else np.asarray(banned)
    mask = in_conversation(
        codes, previous=previous, banned=banned, min_votes=7, min_participants=15
    )
    return np.flatnonzero(mask).tolist()


def test_the_vote_threshold_is_the_number_of_voted_statements_when_below_seven():
    # Five statements, only three voted on: threshold min(7, 3) = 3. Sixteen reach it (>= 15,
    # no fill); the four with two votes stay out.
    counts = [3] * 8 + [2] * 4 + [3] * 8
    assert _in(counts, 5) == list(range(8)) + list(range(12, 20))


def test_the_vote_threshold_is_seven_with_more_statements():
    counts = [7] * 8 + [6] * 4 + [9] * 8
    assert _in(counts, 10) == list(range(8)) + list(range(12, 20))


def test_the_top_voters_fill_the_set_up_to_fifteen_earlier_first_among_equals():
    # Twelve reach 7; three more are needed: p14 (6 votes), then of the 5-vote p12, p15, p16
    # the earlier two, p12 and p15. p13 (3), p17 (1), p18 (0) stay out.
    counts = [7] * 12 + [5, 3, 6, 5, 5, 1, 0]
    assert _in(counts, 10) == list(range(12)) + [12, 14, 15]


def test_with_fewer_than_fifteen_voters_everyone_who_voted_is_in():
    assert _in([1, 0, 2, 1], 10) == [0, 2, 3]


def test_membership_is_sticky():
    # p16 has 2 votes, below 7, but was in before.
    previous = np.zeros(17, bool)
    previous[16] = True
    assert _in([7] * 16 + [2], 10, previous=previous) == list(range(17))


def test_a_banned_participant_is_never_in():
    banned = np.zeros(17, bool)
    banned[3] = True
    assert 3 not in _in([7] * 17, 10, banned=banned)
    # Not by the fill either, although the top voter; nor by stickiness.
    assert _in([10, 1, 1], 10, banned=[True, False, False]) == [1, 2]
    assert _in([10, 1, 1], 10, previous=np.ones(3, bool), banned=[True, False, False]) == [1, 2]


def test_passes_and_votes_on_moderated_out_statements_count_towards_the_threshold():
    # Eight statements, s7 moderated out. p0-p14 vote on s0-s6; p15 passes on s0-s6 (7 votes);
    # p16 votes on s0-s5 and s7 (7 votes); p17 on s0-s5 only (6 votes: out, no fill needed).
    cells = [(i, j, A if (i + j) % 2 else D) for i in range(15) for j in range(7)]
    cells += [(15, j, P) for j in range(7)]
    cells += [(16, j, A) for j in [0, 1, 2, 3, 4, 5, 7]]
    cells += [(17, j, D) for j in range(6)]
    moderated = np.zeros(8, bool)
    moderated[7] = True
    result, _ = compute(_events(cells), moderated_out=moderated)
    assert np.flatnonzero(result.in_conversation).tolist() == list(range(17))


def _sticky_scenario():
    # First: five participants, three statements, 3, 3, 1, 1 and 2 votes: threshold 3, and the
    # fill to min(15, 5) takes everyone. Then 20 newcomers vote on ten statements: threshold 7,
    # the 20 are enough, and p0-p4 (<= 3 votes) qualify no more.
    first = [
        (0, 0, A),
        (0, 1, D),
        (0, 2, P),
        (1, 0, D),
        (1, 1, D),
        (1, 2, A),
        (2, 0, A),
        (3, 1, D),
        (4, 0, A),
        (4, 2, D),
    ]
    later = [(i, j, (i + j) % 3 - 1) for i in range(5, 25) for j in range(10)]
    return _events(first), _events(later, start=1000)


def test_membership_is_sticky_across_engine_updates():
    first, later = _sticky_scenario()
    result, state = compute(first)
    assert result.in_conversation.tolist() == [True] * 5
    result, state = update(state, later)
    assert result.in_conversation.tolist() == [True] * 25
    # From scratch, the same votes leave p0-p4 out.
    fresh, _ = compute(
        VoteEvents(
            *(
                np.concatenate([getattr(first, f), getattr(later, f)])
                for f in ("timestamp_ms", "participant", "statement", "vote")
            )
        )
    )
    assert fresh.in_conversation.tolist() == [False] * 5 + [True] * 20


def test_the_engine_leaves_banned_participants_out_even_when_they_were_in():
    first, later = _sticky_scenario()
    banned = np.zeros(5, bool)
    banned[1] = True
    result, state = compute(first, banned=banned)
    assert result.in_conversation.tolist() == [True, False, True, True, True]
    banned = np.zeros(25, bool)
    banned[[0, 7]] = True
    result, _ = update(state, later, banned=banned)
    # p0 and p7 banned; p1, unbanned, was never in and has 3 votes, fewer than 7.
    assert np.flatnonzero(~result.in_conversation).tolist() == [0, 1, 7]


# -- 4, 5. PCA and the projection -----------------------------------------------------------

# Four active statements and a moderated-out one (s4); p6 is banned.
#   s0: p0 A, p1 D, p4 A, p5 A -> mean 1/2, centred 0.5, -1.5, 0.5, 0.5: squared norm 3
#   s1: p2 A, p3 D             -> mean 0,   centred 1, -1:               squared norm 2
#   s2, s3: p1, p2, p3 all agree -> mean 1, centred 0 (no variance)
# The centred columns are orthogonal (s0 and s1 have no voter in common), so X^T X is
# diag(3, 2, 0, 0): pc1 = e0, pc2 = e1 (signs: the largest loading positive).
PROJECTION_TOY = [
    [A, _, _, _, D],
    [D, _, A, A, A],
    [_, A, A, A, _],
    [_, D, A, A, _],
    [A, _, _, _, _],
    [A, _, _, _, _],
    [D, D, D, D, _],  # banned: counts in no mean
]
MODERATED = np.array([False, False, False, False, True])
BANNED = np.array([False] * 6 + [True])


def _toy_fit():
    return pca(_codes(PROJECTION_TOY), active_statements=~MODERATED, active_participants=~BANNED)


def test_pca_of_the_toy_finds_the_two_orthogonal_statements():
    fit = _toy_fit()
    assert fit.means.tolist() == [0.5, 0.0, 1.0, 1.0, 0.0]  # the banned p6 is not in them
    assert fit.n_active == 4
    assert fit.components == pytest.approx(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]), abs=1e-12)


def test_a_participant_who_voted_on_one_of_four_statements_is_scaled_by_two():
    # sqrt(n_active / |V_i|) * sum_j (v_ij - mean_j) * (pc1_j, pc2_j):
    #   p0: s0 only among the active (s4 is moderated out, not counted): sqrt(4/1) * 0.5 = 1
    #   p1: 3 active votes, s0 centred -1.5: sqrt(4/3) * -1.5 = -sqrt(3) = -1.732051
    #   p2, p3: 3 active votes, s1 centred +-1: +-sqrt(4/3) = +-1.154701
    #   p4, p5: as p0;  p6 (banned): nothing
    xy = project_participants(_toy_fit())
    expected = [[1, 0], [-1.732051, 0], [0, 1.154701], [0, -1.154701], [1, 0], [1, 0], [0, 0]]
    assert xy == pytest.approx(np.array(expected), abs=1e-6)


def test_statements_project_as_a_participant_agreeing_with_them_alone():
    # sqrt(4) * (1 - mean_j) * (pc1_j, pc2_j): s0 2 * 0.5 * (1, 0) = (1, 0), extremity 1;
    # s1 2 * 1 * (0, 1) = (0, 2), extremity 2; s2, s3 (mean 1) and the moderated s4: (0, 0).
    xy, extremity = project_statements(_toy_fit())
    assert xy == pytest.approx(np.array([[1, 0], [0, 2], [0, 0], [0, 0], [0, 0]]), abs=1e-12)
    assert extremity == pytest.approx([1, 2, 0, 0, 0], abs=1e-12)


def _dense_pca(dense):
    """Reference: mean-impute the NaN cells, centre, numpy SVD; components and projections."""
    means = np.nanmean(dense, axis=0)
    filled = np.where(np.isnan(dense), means, dense)
    centred = filled - filled.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    voted = (~np.isnan(dense)).sum(axis=1)
    scale = np.sqrt(dense.shape[1] / np.maximum(voted, 1))
    return vt[:2], centred @ vt[:2].T * scale[:, None], singular


def _assert_same_up_to_sign(fit, components, projections):
    xy = project_participants(fit)
    for axis in range(2):
        sign = np.sign(fit.components[axis] @ components[axis])
        assert fit.components[axis] == pytest.approx(sign * components[axis], abs=1e-8)
        assert xy[:, axis] == pytest.approx(sign * projections[:, axis], abs=1e-8)


def _random_votes():
    rng = np.random.RandomState(7)
    dense = rng.randint(-1, 2, size=(30, 8)).astype(float)
    dense[rng.rand(30, 8) < 0.4] = np.nan
    dense[0] = [1, -1, 0, 1, -1, 0, 1, -1]  # every column has votes
    return dense


def _codes_of_dense(dense):
    rows, cols = np.nonzero(~np.isnan(dense))
    events = VoteEvents(np.arange(len(rows)), rows, cols, dense[rows, cols])
    return latest_votes(events, *dense.shape)


@pytest.mark.parametrize("solver", ["gram", "arpack"])
def test_sparse_pca_equals_dense_mean_imputed_pca_on_a_random_matrix(solver, monkeypatch):
    if solver == "arpack":
        monkeypatch.setattr(pca_module, "GRAM_MAX_STATEMENTS", 0)
    dense = _random_votes()
    components, projections, singular = _dense_pca(dense)
    assert singular[1] > 1.05 * singular[2]  # the top two axes are well defined
    everyone, every_statement = np.ones(30, bool), np.ones(8, bool)
    fit = pca(
        _codes_of_dense(dense), active_statements=every_statement, active_participants=everyone
    )
    _assert_same_up_to_sign(fit, components, projections)


def test_sparse_pca_equals_dense_mean_imputed_pca_on_london_youth_policing(load_conversation):
    conversation = load_conversation("london.youth.policing")  # read_export, cached
    n, m = len(conversation.participant_ids), len(conversation.statements)
    codes = latest_votes(conversation.votes, n, m)
    active = ~conversation.moderated_out() & (np.bincount(codes.indices, minlength=m) > 0)
    fit = pca(
        codes, active_statements=~conversation.moderated_out(), active_participants=np.ones(n, bool)
    )
    dense = np.where(codes.toarray() > 0, codes.toarray() - 2.0, np.nan)[:, active]
    components, projections, singular = _dense_pca(dense)
    assert singular[1] > 1.05 * singular[2]
    full = np.zeros((2, m))
    full[:, active] = components
    _assert_same_up_to_sign(fit, full, projections)
