"""The Pol.is statistics on toy tallies whose answers were worked by hand (spec sections 7-11).

Every expected number is a literal from the working in the comment next to it; no test
evaluates the formula it checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from polis_like.conversation import VoteEvents
from polis_like.math.matrix import latest_votes
from polis_like.math.stats import (
    GroupStats,
    Tallies,
    group_informed_consensus,
    group_stats,
    majority,
    priority,
    prop_test,
    representative,
    tally,
    two_prop_test,
)

A, D, P = 1, -1, 0  # agree, disagree, pass


def _codes(rows):
    """Latest-vote codes of a toy matrix given as rows of A / D / P."""
    cells = [(i, j, v) for i, row in enumerate(rows) for j, v in enumerate(row)]
    p, s, v = zip(*cells, strict=True)
    return latest_votes(VoteEvents(np.arange(len(v)), p, s, v), len(rows), len(rows[0]))


# Two groups of three, four statements:
#   s0: group 0 agrees, group 1 disagrees;  s1: group 0 mostly agrees, group 1 disagrees or passes;
#   s2: the mirror of s0;                   s3: everyone split (one agree, one disagree, one pass).
TOY = [
    [A, A, D, A],
    [A, A, D, D],
    [A, D, D, P],
    [D, D, A, A],
    [D, D, A, D],
    [D, P, A, P],
    [A, A, A, A],  # not clustered (label -1): left out of every tally
]
TOY_LABELS = np.array([0, 0, 0, 1, 1, 1, -1])


def _toy_tallies() -> Tallies:
    return tally(_codes(TOY), TOY_LABELS, 2)


def test_tally_counts_each_groups_agrees_disagrees_and_seen_and_skips_the_unclustered():
    t = _toy_tallies()
    assert t.agree.tolist() == [[3, 2, 0, 1], [0, 0, 3, 1]]
    assert t.disagree.tolist() == [[0, 1, 3, 1], [3, 2, 0, 1]]
    assert t.seen.tolist() == [[3, 3, 3, 3], [3, 3, 3, 3]]


def test_prop_test_is_the_polis_one_proportion_z_against_one_half():
    # 2 sqrt(n+1) ((s+1)/(n+1) - 1/2):
    #   s=3, n=3:  2*2*(4/4 - 1/2) = 2     s=0, n=3: 2*2*(1/4 - 1/2) = -1
    #   s=5, n=8:  2*3*(6/9 - 1/2) = 1     s=8, n=8: 2*3*(9/9 - 1/2) = 3
    #   s=0, n=0:  2*1*(1/1 - 1/2) = 1
    got = prop_test(np.array([3.0, 0, 5, 8, 0]), np.array([3.0, 3, 8, 8, 0]))
    assert got == pytest.approx([2.0, -1.0, 1.0, 3.0, 1.0])


def test_two_prop_test_adds_one_to_every_count():
    # z(2, 0, 3, 3): counts 3, 1, 4, 4; p1 = 3/4, p2 = 1/4, p = 4/8 = 1/2;
    #   var = 1/2 * 1/2 * (1/4 + 1/4) = 1/8;  z = (1/2) / sqrt(1/8) = sqrt(2) = 1.414214
    # z(3, 0, 3, 3): counts 4, 1, 4, 4; p1 = 1, p2 = 1/4, p = 5/8;
    #   var = 5/8 * 3/8 * 1/2 = 15/128;  z = (3/4) / sqrt(15/128) = sqrt(72/15) = 2.190890
    got = two_prop_test(
        np.array([2.0, 0, 3]), np.array([0.0, 2, 0]), np.array([3.0, 3, 3]), np.array([3.0, 3, 3])
    )
    assert got == pytest.approx([1.414214, -1.414214, 2.190890], abs=1e-6)


def test_two_prop_test_is_zero_when_the_pooled_proportion_is_one():
    # Every trial a success in both samples: counts (3, 6, 3, 6), p = 9/9 = 1, variance 0 -> 0
    # (not a division by zero); likewise for (0, 0, 0, 0): counts (1, 1, 1, 1).
    got = two_prop_test(
        np.array([2.0, 0]), np.array([5.0, 0]), np.array([2.0, 0]), np.array([5.0, 0])
    )
    assert got.tolist() == [0.0, 0.0]


def test_group_stats_of_a_two_group_tally():
    s = group_stats(_toy_tallies())
    # Group 0, s0: na=3 nd=0 ns=3; rest (group 1) na=0 nd=3 ns=3.
    #   pa = 4/5 = 0.8, pd = 1/5 = 0.2, pat = 2*2*(4/4 - 1/2) = 2, pdt = 2*2*(1/4 - 1/2) = -1
    #   ra = 0.8 / (1/5) = 4, rd = 0.2 / (4/5) = 0.25
    #   rat = z(3, 0, 3, 3) = sqrt(4.8) = 2.190890, rdt = z(0, 3, 3, 3) = -2.190890
    # Group 0, s1: na=2 nd=1 ns=3; rest na=0 nd=2 ns=3.
    #   pa = 3/5 = 0.6, pd = 2/5 = 0.4, pat = 4*(3/4 - 1/2) = 1, pdt = 4*(2/4 - 1/2) = 0
    #   ra = 0.6 / (1/5) = 3, rd = 0.4 / (3/5) = 2/3
    #   rat = z(2, 0, 3, 3) = sqrt(2) = 1.414214
    #   rdt = z(1, 2, 3, 3): counts 2, 3, 4, 4; p1 = 1/2, p2 = 3/4, p = 5/8, var = 15/128,
    #         z = (-1/4) / sqrt(15/128) = -sqrt(8/15) = -0.730297
    # Group 1, s1: na=0 nd=2 ns=3; rest na=2 nd=1 ns=3.
    #   pa = 1/5 = 0.2, pd = 3/5 = 0.6, pat = 4*(1/4 - 1/2) = -1, pdt = 4*(3/4 - 1/2) = 1
    #   ra = 0.2 / (3/5) = 1/3, rd = 0.6 / (2/5) = 1.5, rat = -sqrt(2), rdt = +sqrt(8/15)
    expected = {
        "pa": [(0, 0, 0.8), (0, 1, 0.6), (1, 1, 0.2)],
        "pd": [(0, 0, 0.2), (0, 1, 0.4), (1, 1, 0.6)],
        "pat": [(0, 0, 2.0), (0, 1, 1.0), (1, 1, -1.0)],
        "pdt": [(0, 0, -1.0), (0, 1, 0.0), (1, 1, 1.0)],
        "ra": [(0, 0, 4.0), (0, 1, 3.0), (1, 1, 0.333333)],
        "rd": [(0, 0, 0.25), (0, 1, 0.666667), (1, 1, 1.5)],
        "rat": [(0, 0, 2.190890), (0, 1, 1.414214), (1, 1, -1.414214)],
        "rdt": [(0, 0, -2.190890), (0, 1, -0.730297), (1, 1, 0.730297)],
    }
    for name, cells in expected.items():
        for g, j, value in cells:
            assert getattr(s, name)[g, j] == pytest.approx(value, abs=1e-6), (name, g, j)


def test_representative_picks_an_agree_statement_and_a_disagree_statement_per_group():
    s = group_stats(_toy_tallies())
    everything = np.ones(4, bool)
    # Group 0: s0 passes for agree (rat 2.19 > 1.2816 and pat 2 > 1.2816) and is the best agree:
    #   candidates s0 (pat 2) and s1 (ra 3 > 1, pa 0.6 > 0.5), both with ra > 1;
    #   ra*rat*pa*pat: s0 4 * 2.190890 * 0.8 * 2 = 14.021698, s1 3 * 1.414214 * 0.6 * 1 = 2.545584.
    # s2 passes for disagree (rdt 2.19, pdt 2; rd = 0.8 / (1/5) = 4): metric 14.021698.
    # s1 fails (pat 1 < 1.2816), s3 fails (rat = rdt = 0).
    group0 = representative(s, 0, everything)
    assert [(r.statement, r.direction, r.best_agree) for r in group0] == [
        (0, "agree", True),
        (2, "disagree", False),
    ]
    assert group0[0].metric == pytest.approx(14.021698, abs=1e-6)
    assert group0[1].metric == pytest.approx(14.021698, abs=1e-6)
    assert (group0[1].n_success, group0[1].n_trials) == (3, 3)
    # Group 1 is the mirror image: s2 agree (best), s0 disagree.
    group1 = representative(s, 1, everything)
    assert [(r.statement, r.direction, r.best_agree) for r in group1] == [
        (2, "agree", True),
        (0, "disagree", False),
    ]


def test_a_moderated_out_statement_is_never_representative():
    s = group_stats(_toy_tallies())
    # Without s0, group 0's only strong candidate is s1 (ra 3, pa 0.6): best agree, then s2.
    group0 = representative(s, 0, np.array([False, True, True, True]))
    assert [(r.statement, r.direction, r.best_agree) for r in group0] == [
        (1, "agree", True),
        (2, "disagree", False),
    ]


NEUTRAL = dict(na=1, nd=1, ns=4, pa=0.5, pd=0.5, pat=0.0, pdt=0.0, ra=1.0, rd=1.0, rat=0.0, rdt=0.0)


def _one_group(**columns) -> GroupStats:
    """Statistics of one group, given per statement; unnamed ones are neutral (NEUTRAL).

    Selection rules only read these numbers, so a test may set them directly.
    """
    n = len(next(iter(columns.values())))
    return GroupStats(
        **{
            name: np.array([columns.get(name, [value] * n)], dtype=float)
            for name, value in NEUTRAL.items()
        }
    )


def _picked(stats: GroupStats, eligible=None):
    n = stats.pa.shape[1]
    eligible = np.ones(n, bool) if eligible is None else np.asarray(eligible)
    return [(r.statement, r.direction, r.best_agree) for r in representative(stats, 0, eligible)]


def test_best_agree_depends_on_the_order_pol_is_meets_the_statements_in():
    # s0: ra 0.9, pa*pat = 0.9 * 3 = 2.7;  s1: ra 1.2, pa*pat = 0.7 * 1.5 = 1.05, and
    # ra*rat*pa*pat = 1.2 * 1.0 * 1.05 = 1.26. Both qualify first (pat > 1.2816); neither passes.
    # Met s0 first: the best so far has ra <= 1, so s1 must beat it on pa*pat (1.05 < 2.7): s0.
    # Met s1 first: the best so far has ra > 1, so s0 must beat it on ra*rat*pa*pat
    # (0.9 * 0.5 * 2.7 = 1.215 < 1.26): s1. Pol.is's reduce keeps whichever it met first here.
    stats = _one_group(pa=[0.9, 0.7], pat=[3.0, 1.5], ra=[0.9, 1.2], rat=[0.5, 1.0])
    assert _picked(stats) == [(0, "agree", True)]
    reversed_order = representative(stats, 0, np.ones(2, bool), order=np.array([1, 0]))
    assert [(r.statement, r.best_agree) for r in reversed_order] == [(1, True)]


def test_best_agree_among_ra_above_one_takes_the_largest_ra_rat_pa_pat():
    # ra*rat*pa*pat: s0 2 * 1 * 0.6 * 1.5 = 1.8;  s1 1.5 * 2 * 0.7 * 1.4 = 2.94;
    #                s2 3 * 0.5 * 0.9 * 2 = 2.7 (s2 has the largest pa*pat, 1.8, but loses).
    stats = _one_group(
        ra=[2.0, 1.5, 3.0], rat=[1.0, 2.0, 0.5], pa=[0.6, 0.7, 0.9], pat=[1.5, 1.4, 2.0]
    )
    assert _picked(stats) == [(1, "agree", True)]


def test_best_agree_falls_back_on_the_largest_pa_pat_when_no_ra_exceeds_one():
    # No ra > 1. pa*pat: s0 0.8 * 2 = 1.6, s1 0.9 * 1.5 = 1.35 -> s0, although s1 has the larger
    # ra*rat*pa*pat (0.95 * 3 * 1.35 = 3.85 against 0.9 * 0.5 * 1.6 = 0.72).
    # s1 passes for agree (rat 3, pat 1.5) and follows.
    stats = _one_group(ra=[0.9, 0.95], rat=[0.5, 3.0], pa=[0.8, 0.9], pat=[2.0, 1.5])
    assert _picked(stats) == [(0, "agree", True), (1, "agree", False)]


def test_a_best_agree_candidate_needs_pat_above_z90_or_ra_above_one_with_pa_above_half():
    # s0: pat 1.2 <= 1.2816, ra 1.5 but pa 0.5 is not > 0.5      -> not a candidate
    # s1: pat 1.0, pa 0.7 but ra 1.0 is not > 1                    -> not a candidate
    # s2: pat 1.0, ra 1.1 > 1 and pa 0.55 > 0.5                    -> candidate
    # s3: pat 1.3 > 1.2816 (ra 0.5, pa 0.6)                        -> candidate
    # Nothing passes (every rat and rdt < 1.2816).
    stats = _one_group(
        pat=[1.2, 1.0, 1.0, 1.3],
        ra=[1.5, 1.0, 1.1, 0.5],
        pa=[0.5, 0.7, 0.55, 0.6],
        rat=[0.3, 0.8, 0.1, 0.1],
    )
    assert _picked(stats, [True, True, True, False]) == [(2, "agree", True)]
    assert _picked(stats, [True, True, False, True]) == [(3, "agree", True)]
    # Without s2 and s3 there is no best agree: the fallback is the largest max(rat, rdt), s1
    # (0.8 against 0.3), not flagged.
    assert _picked(stats, [True, True, False, False]) == [(1, "agree", False)]


def test_best_agree_skips_statements_with_no_agrees_and_no_disagrees():
    # Real tallies never make such a statement a candidate; the rule is a guard, so s0's numbers
    # are set by hand: it would win on ra*rat*pa*pat (2 * 1 * 0.9 * 3 = 5.4 > 1.2 * 1 * 0.7 * 1.5).
    stats = _one_group(
        na=[0, 3],
        nd=[0, 0],
        ns=[4, 4],
        pa=[0.9, 0.7],
        pat=[3.0, 1.5],
        ra=[2.0, 1.2],
        rat=[1.0, 1.0],
    )
    assert _picked(stats) == [(1, "agree", True)]


# s0-s2 agree (rat > rdt = 0), s3-s5 disagree (rat -2 < rdt); all pass their side's tests.
#   agree metric ra*rat*pa*pat:     s0 3*3*0.9*3 = 24.3, s1 2*2*0.8*2 = 6.4, s2 1.5*2*0.8*2 = 4.8
#   disagree metric rd*rdt*pd*pdt:  s3 3*3*0.9*3 = 24.3, s4 3*2.5*0.9*2.5 = 16.875,
#                                   s5 2*3*0.9*3 = 16.2
# Best agree (pat > 1.2816, ra > 1): the largest agree product, s0.
ORDERING = dict(
    ra=[3.0, 2.0, 1.5, 0.5, 0.5, 0.5],
    rat=[3.0, 2.0, 2.0, -2.0, -2.0, -2.0],
    pa=[0.9, 0.8, 0.8, 0.2, 0.2, 0.2],
    pat=[3.0, 2.0, 2.0, -1.0, -1.0, -1.0],
    rd=[1.0, 1.0, 1.0, 3.0, 3.0, 2.0],
    rdt=[0.0, 0.0, 0.0, 3.0, 2.5, 3.0],
    pd=[0.5, 0.5, 0.5, 0.9, 0.9, 0.9],
    pdt=[0.0, 0.0, 0.0, 3.0, 2.5, 3.0],
)


def test_representative_lists_the_best_agree_first_then_five_in_all_agrees_before_disagrees():
    # Best agree s0, then the four best metrics of the rest: s3 24.3, s4 16.875, s5 16.2, s1 6.4;
    # s2 (4.8) is sixth and dropped although it is an agree. Then agrees before disagrees.
    reps = representative(_one_group(**ORDERING), 0, np.ones(6, bool))
    assert [(r.statement, r.direction, r.best_agree) for r in reps] == [
        (0, "agree", True),
        (1, "agree", False),
        (3, "disagree", False),
        (4, "disagree", False),
        (5, "disagree", False),
    ]
    assert [r.metric for r in reps] == pytest.approx([24.3, 6.4, 24.3, 16.875, 16.2])


def test_a_moderated_out_best_agree_gives_way_to_the_next():
    # Without s0: best agree s1 (6.4 > 4.8), then s3, s4, s5, s2; agrees first.
    eligible = np.array([False, True, True, True, True, True])
    assert _picked(_one_group(**ORDERING), eligible) == [
        (1, "agree", True),
        (2, "agree", False),
        (3, "disagree", False),
        (4, "disagree", False),
        (5, "disagree", False),
    ]


def test_with_nothing_passing_the_best_agree_stands_alone():
    # s0: candidate (pat 1.5 > 1.2816) but rat 1.0 fails the test; s1: larger max(rat, rdt) 1.2,
    # not a candidate (pat 0, ra 1). Only the best agree is shown.
    stats = _one_group(pat=[1.5, 0.0], pa=[0.7, 0.5], ra=[1.2, 1.0], rat=[1.0, 1.2])
    assert _picked(stats) == [(0, "agree", True)]


def test_with_nothing_passing_and_no_best_agree_the_largest_max_rat_rdt_stands_alone():
    # No candidate (pat 0, ra 1 everywhere). max(rat, rdt): s0 max(0.3, 1.0) = 1.0,
    # s1 max(0.9, -0.9) = 0.9, s2 1.2 but moderated out. s0, for disagree (rdt > rat).
    stats = _one_group(rat=[0.3, 0.9, 1.2], rdt=[1.0, -0.9, 0.0])
    assert _picked(stats, [True, True, False]) == [(0, "disagree", False)]


# Whole-population totals (one group). pa = (A+1)/(S+2), pat = 2 sqrt(S+1) ((A+1)/(S+1) - 1/2):
#   s0 A=8 S=8:   pa 9/10 = 0.9,   pat 2*3*(9/9 - 1/2) = 3,      pa*pat 2.7
#   s1 A=5 D=1 S=8: pa 0.6,        pat 6*(6/9 - 1/2) = 1         -> fails pat > 1.2816
#   s2 A=6 S=8:   pa 0.7,          pat 6*(7/9 - 1/2) = 5/3,      pa*pat 1.1667
#   s3 A=7 D=1 S=8: pa 0.8,        pat 6*(8/9 - 1/2) = 7/3,      pa*pat 1.8667
#   s4 D=8 S=8:   pd 0.9,          pdt 3                         -> the disagree list
#   s5 A=8 S=8:   as s0, but moderated out
#   s6 A=3 S=3:   pa 4/5 = 0.8,    pat 2*2*(1 - 1/2) = 2,        pa*pat 1.6
#   s7 A=2 S=2:   pa 3/4,          pat 2*sqrt(3)*(1/2) = 1.7321, pa*pat 1.2990
#   s8 A=15 S=15: pa 16/17 = 0.941176, pat 2*4*(1/2) = 4,        pa*pat 3.7647
MAJORITY = Tallies(
    agree=np.array([[8, 5, 6, 7, 0, 8, 3, 2, 15]]),
    disagree=np.array([[0, 1, 0, 1, 8, 0, 0, 0, 0]]),
    seen=np.array([[8, 8, 8, 8, 8, 8, 3, 2, 15]]),
)
MAJORITY_ELIGIBLE = np.array([True] * 5 + [False] + [True] * 3)


def test_majority_agree_list_ranks_by_pa_pat_and_keeps_five():
    # Passing: s8 3.7647, s0 2.7, s3 1.8667, s6 1.6, s7 1.2990, s2 1.1667 -> the first five.
    lists = majority(MAJORITY, MAJORITY_ELIGIBLE)
    assert [m.statement for m in lists["agree"]] == [8, 0, 3, 6, 7]
    top = lists["agree"][0]
    assert (top.n_success, top.n_trials) == (15, 15)
    assert (top.p_success, top.p_test) == pytest.approx((0.941176, 4.0), abs=1e-6)


def test_majority_needs_pat_above_z90_and_leaves_out_moderated_statements():
    lists = majority(MAJORITY, MAJORITY_ELIGIBLE, count=9)
    assert 1 not in [m.statement for m in lists["agree"]]  # pa 0.6 but pat 1
    assert 5 not in [m.statement for m in lists["agree"]]  # moderated out
    assert [m.statement for m in lists["agree"]] == [8, 0, 3, 6, 7, 2]


def test_majority_disagree_list_uses_pd_and_pdt():
    lists = majority(MAJORITY, MAJORITY_ELIGIBLE)
    assert [(m.statement, m.n_success, m.n_trials) for m in lists["disagree"]] == [(4, 8, 8)]
    top = lists["disagree"][0]
    assert (top.p_success, top.p_test) == pytest.approx((0.9, 3.0))


def test_group_informed_consensus_is_the_product_over_groups():
    # s0: (3+1)/(3+2) * (1+1)/(2+2) * (0+1)/(0+2) = 0.8 * 0.5 * 0.5 = 0.2
    # s1: (0+1)/(3+2) * (2+1)/(2+2) * (1+1)/(1+2) = 0.2 * 0.75 * 0.666667 = 0.1
    t = Tallies(
        agree=np.array([[3, 0], [1, 2], [0, 1]]),
        disagree=np.array([[0, 2], [1, 0], [0, 0]]),
        seen=np.array([[3, 3], [2, 2], [0, 1]]),
    )
    assert group_informed_consensus(t) == pytest.approx([0.2, 0.1])


def test_group_informed_consensus_counts_a_pass_as_much_against_as_a_disagree():
    # One agree of three seen, whether the other two disagreed or passed: 2/5 = 0.4 both.
    t = Tallies(np.array([[1, 1]]), np.array([[2, 0]]), np.array([[3, 3]]))
    assert group_informed_consensus(t).tolist() == pytest.approx([0.4, 0.4])


def test_priority_formula_on_a_tally_summed_over_groups():
    # Totals A=3, D=1, S=5 (so P=1), extremity E=1:
    #   p = 2/7, a = 4/7, importance = (5/7) * 2 * (4/7) = 40/49
    #   novelty = 1 + 8 * 2^(-5/5) = 5, priority = (200/49)^2 = 40000/2401 = 16.659725
    t = Tallies(np.array([[2], [1]]), np.array([[1], [0]]), np.array([[3], [2]]))
    assert priority(t, np.array([1.0]), np.array([False])) == pytest.approx([16.659725])


def test_priority_novelty_boost_falls_as_a_statement_is_seen():
    # Pass rate and agree rate both 1/2, E = 0, so importance = 1/2 * 1 * 1/2 = 1/4:
    #   S=0  (A=0, P=0):   (1/4 * (1 + 8))^2        = 2.25^2  = 5.0625
    #   S=10 (A=5, P=5):   (1/4 * (1 + 8/4))^2      = 0.75^2  = 0.5625
    #   S=20 (A=10, P=10): (1/4 * (1 + 8/16))^2     = 0.375^2 = 0.140625
    t = Tallies(np.array([[0, 5, 10]]), np.array([[0, 0, 0]]), np.array([[0, 10, 20]]))
    assert priority(t, np.zeros(3), np.zeros(3, bool)) == pytest.approx([5.0625, 0.5625, 0.140625])


def test_a_meta_statement_has_priority_49_whatever_its_votes():
    t = Tallies(np.array([[3, 0]]), np.array([[1, 0]]), np.array([[5, 0]]))
    assert priority(t, np.array([1.0, 0.0]), np.array([True, True])).tolist() == [49.0, 49.0]


def test_the_best_agree_is_labelled_disagree_when_its_disagree_test_is_stronger():
    # Pol.is picks the best agree by its agree numbers but labels it by rat > rdt: s0 qualifies
    # (pat 2 > 1.2816) with rat 0.5 < rdt 1.0, so it leads, labelled disagree, flagged best agree.
    stats = _one_group(pa=[0.8], pat=[2.0], ra=[0.9], rat=[0.5], rdt=[1.0])
    assert _picked(stats) == [(0, "disagree", True)]
