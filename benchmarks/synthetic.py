"""Seeded synthetic conversations with planted opinion groups, for benchmarks and tests.

Each of ``n_groups`` groups has an agree probability per statement; a participant belongs to one
group and votes on a few statements drawn without replacement, passing at a per-statement rate.
Everything is vectorised numpy: 1M participants x 30 votes take a few seconds, and no
participants x statements array is ever built (except for the rows of a tiny conversation where
a participant votes on more than a quarter of the statements).

Time model: participants arrive over ``duration_days`` (many early, fewer later) and get ids in
arrival order, as Pol.is gives them; each votes in one or more sessions (a vote every few seconds,
now and then a break of hours or days). Events come out grouped by participant, each participant's
in time order, re-votes last; use ``VoteEvents.time_order()`` to replay them in time order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    from polis_like.conversation import VoteEvents
except ModuleNotFoundError:  # run as a script from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from polis_like.conversation import VoteEvents

#: Bump when the output for a given seed changes (benchmark caches are keyed by it).
GENERATOR_VERSION = 2

MIN_VOTES = 7  # Pol.is clusters participants from 7 votes on
START_MS = 1_700_000_000_000  # 2023-11-14, a fixed epoch so that output depends on the seed only
_LOOKUP_CELLS_PER_STATEMENT = 64  # resolution of the statement-popularity lookup table


def generate(
    n_participants: int,
    n_statements: int,
    votes_per_participant: float = 30,
    n_groups: int = 3,
    seed: int = 0,
    *,
    pass_rate: float = 0.15,
    separation: float = 3.0,
    divisive_fraction: float = 0.8,
    revote_fraction: float = 0.0,
    duration_days: float = 14.0,
) -> tuple[VoteEvents, np.ndarray]:
    """A synthetic conversation and the planted group of each participant.

    Parameters
    ----------
    n_participants, n_statements : int
        Size of the conversation; every participant votes at least ``min(7, n_statements)`` times.
    votes_per_participant : float
        Mean votes per participant: ``7 + Poisson(votes_per_participant - 7)``, capped at
        ``n_statements``.
    n_groups : int
        Number of planted opinion groups (sizes drawn from a Dirichlet, roughly balanced).
    seed : int
        The only source of randomness: same arguments, same output.
    pass_rate : float
        Mean pass rate; each statement draws its own around it.
    separation : float
        Standard deviation, in logits, of a group's deviation from a statement's base agree
        rate on divisive statements (0 plants no groups). The defaults are strong enough for
        PCA + k-means to find the groups at 30 votes out of 1,000 statements (adjusted Rand
        about 0.8 from 10,000 participants on); at 1.5 they are invisible at that sparsity.
    divisive_fraction : float
        Share of statements on which groups differ; the others are consensus or rejected alike.
    revote_fraction : float
        Share of (participant, statement) pairs voted twice: the first vote is a random other
        value, the later one (minutes later) is drawn from the group profile, so only the
        latest-vote-counts reading recovers the planted groups at full strength.
    duration_days : float
        Span over which participants arrive.

    Returns
    -------
    events : VoteEvents
        ``n_participants * votes_per_participant`` events or so (plus the re-votes).
    truth : ndarray of shape (n_participants,), int32
        The planted group of each participant, in ``0 .. n_groups - 1``.
    """
    if n_participants < 1 or n_statements < 1 or n_groups < 1:
        raise ValueError("n_participants, n_statements and n_groups must be positive")
    if not 0.0 <= revote_fraction <= 1.0:
        raise ValueError("revote_fraction must be in [0, 1]")
    rng = np.random.default_rng(seed)
    n_p, n_s = n_participants, n_statements

    agree_given_vote, pass_prob, popularity = _profiles(
        rng, n_s, n_groups, pass_rate, separation, divisive_fraction
    )
    truth = rng.choice(n_groups, size=n_p, p=rng.dirichlet(np.full(n_groups, 4.0))).astype(np.int32)

    extra = rng.poisson(max(votes_per_participant - MIN_VOTES, 0), n_p)
    counts = np.minimum(MIN_VOTES + extra, n_s)
    participant = np.repeat(np.arange(n_p, dtype=np.int32), counts)
    statement = _statements_without_replacement(rng, counts, popularity)

    g = truth[participant].astype(np.int64)
    vote = _draw_votes(rng, agree_given_vote.ravel()[g * n_s + statement], pass_prob[statement])
    timestamp = _timestamps(rng, counts, duration_days)

    events = VoteEvents(timestamp, participant, statement, vote)
    if revote_fraction > 0:
        events = _add_revotes(rng, events, revote_fraction)
    return events, truth


def _profiles(
    rng: np.random.Generator,
    n_s: int,
    n_groups: int,
    pass_rate: float,
    separation: float,
    divisive_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agree-given-not-pass probability per (group, statement), pass probability and popularity."""
    base = rng.normal(0.0, 1.0, n_s)
    divisive = rng.random(n_s) < divisive_fraction
    deviation = rng.normal(0.0, separation, (n_groups, n_s)) * divisive
    agree = 1.0 / (1.0 + np.exp(-(base + deviation)))
    # Beta with mean pass_rate and some spread between statements.
    concentration = 12.0
    a, b = pass_rate * concentration + 1e-9, (1 - pass_rate) * concentration + 1e-9
    pass_prob = rng.beta(a, b, n_s)
    # Some statements are shown (routed) more than others.
    popularity = rng.lognormal(0.0, 0.5, n_s)
    return agree, pass_prob, popularity / popularity.sum()


def _statements_without_replacement(
    rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """``counts[i]`` distinct statements for each participant i, concatenated, in voting order.

    Draws with replacement by popularity and redraws the repeats until none is left (cheap
    when a participant sees a small share of the statements); the rows that see more than a
    quarter of the statements use weighted keys (Efraimidis-Spirakis) over all statements.
    """
    n_s = len(popularity)
    table = _popularity_lookup(popularity)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    statement = table[rng.integers(0, len(table), int(counts.sum()))]

    row_of_event = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    dense = counts * 4 > n_s
    if dense.any():
        rows = np.flatnonzero(dense)
        keys = np.log(1.0 - rng.random((len(rows), n_s))) / popularity  # largest keys win
        width = int(counts[rows].max())
        picks = np.argsort(-keys, axis=1)[:, :width].astype(np.int32)
        wanted = np.arange(width) < counts[rows, None]
        statement[(starts[rows, None] + np.arange(width))[wanted]] = picks[wanted]

    # Event indices of the rows still to check for repeats.
    todo = np.flatnonzero(~dense[row_of_event])
    pos_bits = int(counts.max()).bit_length()
    while len(todo):
        row = row_of_event[todo]
        key = ((row * n_s + statement[todo]) << pos_bits) | (todo - starts[row])
        key.sort()
        pair = key >> pos_bits
        repeat = np.flatnonzero(pair[1:] == pair[:-1]) + 1  # keep the earliest, redraw later ones
        if not len(repeat):
            break
        again = starts[pair[repeat] // n_s] + (key[repeat] & ((1 << pos_bits) - 1))
        statement[again] = table[rng.integers(0, len(table), len(again))]
        recheck = np.zeros(len(counts), dtype=bool)
        recheck[row_of_event[again]] = True
        todo = np.flatnonzero(recheck[row_of_event])
    return statement


def _popularity_lookup(popularity: np.ndarray) -> np.ndarray:
    """A table whose uniformly drawn entries follow ``popularity``: faster than searchsorted."""
    edges = np.cumsum(popularity)
    size = max(1 << 16, _LOOKUP_CELLS_PER_STATEMENT * len(popularity))
    cells = (np.arange(size) + 0.5) / size
    table = np.searchsorted(edges, cells * edges[-1]).astype(np.int32)
    return np.minimum(table, len(popularity) - 1)


def _draw_votes(rng: np.random.Generator, agree: np.ndarray, pass_prob: np.ndarray) -> np.ndarray:
    """+1 / -1 / 0 per event from its agree-given-not-pass and pass probabilities."""
    vote = np.where(rng.random(len(agree)) < agree, 1, -1).astype(np.int8)
    vote[rng.random(len(agree)) < pass_prob] = 0
    return vote


def _timestamps(rng: np.random.Generator, counts: np.ndarray, duration_days: float) -> np.ndarray:
    """Increasing times within each participant; arrivals front-loaded over the duration."""
    day_ms = 86_400_000
    n_p, n = len(counts), int(counts.sum())
    # Participant ids follow arrival order, as in Pol.is.
    arrival = np.sort(rng.beta(0.7, 2.0, n_p)) * duration_days * day_ms
    gap = 1_500 + rng.exponential(6_000, n)  # a vote every few seconds within a session
    breaks = rng.random(n) < 0.04  # now and then the participant comes back later
    gap[breaks] += 1_800_000 + rng.exponential(day_ms, int(breaks.sum()))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gap[starts] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[starts], counts)
    return START_MS + (np.repeat(arrival, counts) + elapsed).astype(np.int64)


def _add_revotes(rng: np.random.Generator, events: VoteEvents, fraction: float) -> VoteEvents:
    """Vote a share of the pairs twice: a random other value first, the profile's vote later."""
    chosen = np.flatnonzero(rng.random(len(events)) < fraction)
    final = events.vote[chosen]
    first = events.vote.copy()
    # A different value: shift by 1 or 2 in the cycle -1 -> 0 -> 1 -> -1.
    shift = rng.integers(1, 3, len(chosen))
    first[chosen] = ((final.astype(np.int64) + 1 + shift) % 3 - 1).astype(np.int8)
    delay = 1_000 + rng.exponential(300_000, len(chosen)).astype(np.int64)
    later = events.timestamp_ms[chosen] + delay
    return VoteEvents(
        np.concatenate((events.timestamp_ms, later)),
        np.concatenate((events.participant, events.participant[chosen])),
        np.concatenate((events.statement, events.statement[chosen])),
        np.concatenate((first, final)),
    )
