"""Golden tests on the real Pol.is conversations: our groups against Pol.is's own.

The thresholds are the fidelity reached (docs/benchmarks.md, "Fidelity"), a little below the
measured value so that harmless float noise passes and any real change in the math fails.
Where Pol.is's groups differ from ours, docs/benchmarks.md says why.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from polis_like.math import MathParams, compute

# conversation: (our k, Pol.is's k, ARI at least, clustered sets alike at least), static
# computation, with the default scale (only visible statements) and with Pol.is's scale.
REACHED = {
    "15-per-hour-seattle": (2, 2, 0.49, 1.000),
    "bg2050-volunteers": (3, 2, 0.16, 0.99),
    "brexit-consensus": (3, 2, 0.54, 0.95),
    "canadian-electoral-reform": (2, 2, 0.89, 1.000),
    "football-concussions": (3, 2, 0.09, 0.41),
    "london.youth.policing": (2, 3, -0.03, 1.000),
    "scoop-hivemind.biodiversity": (2, 2, 0.65, 0.99),
    "vtaiwan.uberx": (2, 2, 0.53, 0.99),
}
REACHED_POLIS_SCALE = {
    "15-per-hour-seattle": (2, 2, 0.55, 1.000),
    "bg2050-volunteers": (2, 2, 0.99, 0.99),
    "brexit-consensus": (3, 2, 0.54, 0.95),
    "canadian-electoral-reform": (3, 2, 0.16, 1.000),
    "football-concussions": (4, 2, 0.10, 0.41),
    "london.youth.policing": (2, 3, -0.03, 1.000),
    "scoop-hivemind.biodiversity": (2, 2, 0.96, 0.99),
    "vtaiwan.uberx": (4, 2, 0.35, 0.99),
}


def analyse(conversation, scale="visible"):
    result, _ = compute(conversation.votes, n_participants=len(conversation.participant_ids),
                        n_statements=len(conversation.statements),
                        moderated_out=conversation.moderated_out(), meta=conversation.is_meta(),
                        params=MathParams(projection_scale=scale))
    reference = np.array([-1 if conversation.reference_groups.get(p) is None
                          else conversation.reference_groups[p]
                          for p in conversation.participant_ids])
    return result, reference


@pytest.mark.parametrize("scale", ["visible", "polis"])
@pytest.mark.parametrize("name", sorted(REACHED))
def test_groups_agree_with_polis_at_the_fidelity_reached(name, scale, load_conversation):
    our_k, polis_k, min_ari, min_alike = (REACHED if scale == "visible" else REACHED_POLIS_SCALE)[name]
    result, reference = analyse(load_conversation(name), scale)
    ours, theirs = result.group >= 0, reference >= 0
    both = ours & theirs
    assert len(np.unique(reference[theirs])) == polis_k
    assert result.k == our_k
    assert adjusted_rand_score(reference[both], result.group[both]) >= min_ari
    assert (ours & theirs).sum() / (ours | theirs).sum() >= min_alike


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
    agree_18 = [r.direction for reps in result.repness for r in reps if r.statement ==
                conversation.statement_index()["18"]]
    assert sorted(agree_18) == ["agree", "disagree"]
