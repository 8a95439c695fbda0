"""The synthetic conversation generator of the benchmarks (benchmarks/synthetic.py)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic.py"
_SPEC = importlib.util.spec_from_file_location("synthetic", _PATH)
synthetic = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(synthetic)


def _group_agree_rates(events, truth, n_groups, n_statements):
    """Agree share of the seen votes, per (group, statement)."""
    g = truth[events.participant]
    seen = np.zeros((n_groups, n_statements))
    agree = np.zeros((n_groups, n_statements))
    np.add.at(seen, (g, events.statement), 1)
    np.add.at(agree, (g, events.statement), events.vote == 1)
    return agree / np.maximum(seen, 1)


def test_same_seed_gives_identical_output():
    a, truth_a = synthetic.generate(500, 60, seed=7, revote_fraction=0.05)
    b, truth_b = synthetic.generate(500, 60, seed=7, revote_fraction=0.05)
    for name in ("timestamp_ms", "participant", "statement", "vote"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(truth_a, truth_b)


def test_another_seed_gives_other_votes():
    a, _ = synthetic.generate(500, 60, seed=1)
    b, _ = synthetic.generate(500, 60, seed=2)
    assert len(a) != len(b) or not np.array_equal(a.statement, b.statement)


@pytest.mark.parametrize(("n_participants", "n_statements"), [(2_000, 400), (300, 12), (50, 5)])
def test_events_are_valid_distinct_and_in_time_order_per_participant(n_participants, n_statements):
    events, truth = synthetic.generate(n_participants, n_statements, n_groups=4, seed=3)
    assert events.participant.dtype == np.int32 and events.statement.dtype == np.int32
    assert events.vote.dtype == np.int8 and events.timestamp_ms.dtype == np.int64
    assert truth.shape == (n_participants,) and truth.dtype == np.int32
    assert set(np.unique(truth)) <= set(range(4))
    assert set(np.unique(events.vote)) <= {-1, 0, 1}
    assert events.statement.min() >= 0 and events.statement.max() < n_statements
    counts = np.bincount(events.participant, minlength=n_participants)
    assert counts.min() >= min(7, n_statements) and counts.max() <= n_statements
    pairs = events.participant.astype(np.int64) * n_statements + events.statement
    assert len(np.unique(pairs)) == len(events)
    # Grouped by participant in id order, each participant's votes strictly later one by one.
    assert np.all(np.diff(events.participant) >= 0)
    same = np.diff(events.participant) == 0
    assert np.all(np.diff(events.timestamp_ms)[same] > 0)


def test_votes_per_participant_is_the_mean_vote_count():
    events, _ = synthetic.generate(5_000, 1_000, votes_per_participant=30, seed=0)
    assert len(events) / 5_000 == pytest.approx(30, rel=0.03)


def test_participants_arrive_in_id_order():
    events, _ = synthetic.generate(1_000, 100, seed=0)
    first_vote = np.full(1_000, np.iinfo(np.int64).max)
    np.minimum.at(first_vote, events.participant, events.timestamp_ms)
    assert np.all(np.diff(first_vote) >= 0)


def test_revotes_come_later_and_the_latest_vote_follows_the_profile():
    n_p, n_s = 3_000, 50
    events, _ = synthetic.generate(n_p, n_s, n_groups=2, seed=5, revote_fraction=0.1)
    plain, _ = synthetic.generate(n_p, n_s, n_groups=2, seed=5)
    pairs = events.participant.astype(np.int64) * n_s + events.statement
    unique_pairs, multiplicity = np.unique(pairs, return_counts=True)
    assert len(unique_pairs) == len(plain)
    assert (multiplicity == 2).mean() == pytest.approx(0.1, abs=0.02)
    # A re-vote changes the value and happens after the first vote.
    order = np.lexsort((events.timestamp_ms, pairs))
    twice = np.flatnonzero(np.diff(pairs[order]) == 0)
    first, later = order[twice], order[twice + 1]
    assert np.all(events.timestamp_ms[later] > events.timestamp_ms[first])
    assert np.all(events.vote[later] != events.vote[first])


def test_planted_groups_agree_differently_and_no_separation_plants_nothing():
    n_p, n_s = 4_000, 40
    events, truth = synthetic.generate(n_p, n_s, votes_per_participant=20, n_groups=2, seed=11)
    rates = _group_agree_rates(events, truth, 2, n_s)
    assert np.abs(rates[0] - rates[1]).mean() > 0.12
    assert np.abs(rates[0] - rates[1]).max() > 0.4

    flat, truth = synthetic.generate(
        n_p, n_s, votes_per_participant=20, n_groups=2, seed=11, separation=0
    )
    rates = _group_agree_rates(flat, truth, 2, n_s)
    assert np.abs(rates[0] - rates[1]).mean() < 0.05


def test_a_participants_votes_reveal_their_planted_group():
    n_p, n_s = 2_000, 100
    events, truth = synthetic.generate(n_p, n_s, n_groups=3, seed=4, pass_rate=0.1)
    rates = _group_agree_rates(events, truth, 3, n_s)
    # Log-likelihood of each participant's votes under each group's profile; chance is 1/3.
    score = np.zeros((n_p, 3))
    voted = events.vote != 0
    p = np.clip(rates[:, events.statement[voted]], 0.02, 0.98)
    loglik = np.where(events.vote[voted] == 1, np.log(p), np.log(1 - p))
    for g in range(3):
        np.add.at(score[:, g], events.participant[voted], loglik[g])
    assert (score.argmax(axis=1) == truth).mean() > 0.75


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="must be positive"):
        synthetic.generate(0, 10)
    with pytest.raises(ValueError, match=r"revote_fraction must be in \[0, 1\]"):
        synthetic.generate(10, 10, revote_fraction=1.5)
