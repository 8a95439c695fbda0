"""Golden tests on the real Pol.is conversations: what a user can rely on about our groups.

docs/benchmarks.md ("Fidelity") sets three targets against the groups Pol.is itself computed
(the same k, an adjusted Rand index of at least 0.9, clustered sets at least 99 % alike), shows
which conversations meet which, and says why the others miss. These tests hold the claims it
makes; they do not freeze the figures of the conversations that miss a target, which are
history rather than a promise (causes 1 and 3 there).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from polis_like.math import MathParams, compute

TARGET_ARI = 0.9  # docs/benchmarks.md, "Columns": the targets
TARGET_ALIKE = 0.99

#: The conversations whose clustered set docs/benchmarks.md reports as the same as Pol.is's
#: (>= 99 % alike). brexit-consensus and football-concussions miss it, for the reasons it gives.
SAME_CLUSTERED_SET = [
    "15-per-hour-seattle",
    "bg2050-volunteers",
    "canadian-electoral-reform",
    "london.youth.policing",
    "scoop-hivemind.biodiversity",
    "vtaiwan.uberx",
]

#: With Pol.is's projection scale these meet all three targets in a static computation
#: (docs/benchmarks.md: bg2050-volunteers is the one conversation computed entirely by today's
#: Pol.is code).
MEETS_EVERY_TARGET_WITH_POLIS_SCALE = ["bg2050-volunteers", "scoop-hivemind.biodiversity"]


def analyse(conversation, scale="visible"):
    result, _ = compute(
        conversation.votes,
        n_participants=len(conversation.participant_ids),
        n_statements=len(conversation.statements),
        moderated_out=conversation.moderated_out(),
        meta=conversation.is_meta(),
        params=MathParams(projection_scale=scale),
    )
    reference = np.array(
        [
            -1 if conversation.reference_groups.get(p) is None else conversation.reference_groups[p]
            for p in conversation.participant_ids
        ]
    )
    return result, reference


def clustered_alike(ours, theirs):
    """The Jaccard overlap of the participants each side puts in a group."""
    mine, polis = ours >= 0, theirs >= 0
    return (mine & polis).sum() / (mine | polis).sum()


@pytest.mark.parametrize("name", SAME_CLUSTERED_SET)
def test_the_participants_in_groups_are_the_ones_polis_grouped(name, load_conversation):
    result, reference = analyse(load_conversation(name))
    assert clustered_alike(result.group, reference) >= TARGET_ALIKE


@pytest.mark.parametrize("name", MEETS_EVERY_TARGET_WITH_POLIS_SCALE)
def test_with_polis_scale_the_groups_are_polis_groups(name, load_conversation):
    result, reference = analyse(load_conversation(name), scale="polis")
    both = (result.group >= 0) & (reference >= 0)
    assert result.k == len(np.unique(reference[reference >= 0]))
    assert adjusted_rand_score(reference[both], result.group[both]) >= TARGET_ARI
    assert clustered_alike(result.group, reference) >= TARGET_ALIKE


@pytest.mark.parametrize("scale", ["visible", "polis"])
def test_every_conversation_gives_the_same_groups_and_map_on_every_run(scale, load_conversation):
    from conftest import CONVERSATIONS

    for name in CONVERSATIONS:
        first, _ = analyse(load_conversation(name), scale)
        second, _ = analyse(load_conversation(name), scale)
        assert first.k == second.k, name
        np.testing.assert_array_equal(first.group, second.group, err_msg=name)
        np.testing.assert_array_equal(first.x, second.x, err_msg=name)
        np.testing.assert_array_equal(first.y, second.y, err_msg=name)


def test_vtaiwan_groups_are_the_two_camps_of_the_debate(load_conversation):
    """Representative statements a facilitator would recognise: for and against regulating UberX."""
    conversation = load_conversation("vtaiwan.uberx")
    result, _ = analyse(conversation)
    texts = [s.text for s in conversation.statements]
    leads = [texts[reps[0].statement] for reps in result.repness]
    assert result.k == 2
    assert any("Uber" in t or "UberX" in t for t in leads)
    sides = {rep.direction for reps in result.repness for rep in reps}
    assert sides == {"agree", "disagree"}
    # Statement 18 ("UberX operates illegally, so riding feels risky") splits the two groups.
    agree_18 = [
        r.direction
        for reps in result.repness
        for r in reps
        if r.statement == conversation.statement_index()["18"]
    ]
    assert sorted(agree_18) == ["agree", "disagree"]
