"""The fidelity comparisons (polis_like.fidelity) and the benchmark's table."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from polis_like.fidelity import Reference, compare_groups, matched_groups

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fidelity.py"
_SPEC = importlib.util.spec_from_file_location("fidelity_benchmark", _PATH)
fidelity = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fidelity)


def test_relabelled_groups_are_identical():
    row = compare_groups(np.array([0, 0, 1, 1, -1]), np.array([5, 5, 2, 2, -1]))
    assert row["ari"] == pytest.approx(1.0)
    assert (row["k"], row["k_polis"], row["jaccard"]) == (2, 2, 1.0)
    assert fidelity.missed_targets(row, "static") == []


def test_ari_counts_only_participants_both_cluster():
    row = compare_groups(np.array([0, 0, 1, 1, 1, -1]), np.array([0, 0, 1, 1, -1, 0]))
    assert row["ari"] == pytest.approx(1.0)
    assert (row["clustered"], row["clustered_polis"]) == (5, 5)
    assert row["jaccard"] == pytest.approx(4 / 6)


def test_a_different_k_and_a_poor_ari_are_both_reported():
    row = compare_groups(np.array([0, 1, 2, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 1]))
    assert (row["k"], row["k_polis"]) == (3, 2)
    assert fidelity.missed_targets(row, "replay") == ["k", "ARI"]


def test_nobody_clustered_by_both_gives_nan_ari_and_misses_the_target():
    row = compare_groups(np.array([0, -1]), np.array([-1, 0]))
    assert math.isnan(row["ari"])
    assert "ARI" in fidelity.missed_targets(row, "static")


def test_groupings_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="groupings differ in length"):
        compare_groups(np.zeros(3), np.zeros(4))


def test_each_of_our_groups_is_matched_to_the_reference_group_most_of_its_members_are_in():
    ours = np.array([0, 0, 0, 1, 1, -1])
    theirs = np.array([7, 7, 3, 3, 3, 7])
    assert matched_groups(ours, theirs, 2) == {0: 7, 1: 3}


def test_a_file_that_is_not_a_reference_is_refused_by_name(tmp_path):
    path = tmp_path / "x.static.json"
    path.write_text(json.dumps({"mode": "static", "k": 2}))
    with pytest.raises(ValueError, match=r"x\.static\.json: not a Pol\.is math reference"):
        Reference.read(path)


def test_history_groups_follow_participant_order(load_conversation):
    conversation = load_conversation("london.youth.policing")
    history = fidelity.history_groups(conversation)
    assert history.shape == (len(conversation.participant_ids),)
    for pid, group in zip(conversation.participant_ids, history, strict=True):
        expected = conversation.reference_groups.get(pid)
        assert group == (-1 if expected is None else expected)


def test_a_static_run_reports_both_anchors_in_one_row(load_conversation):
    conversation = load_conversation("london.youth.policing")
    reference = Reference.read(fidelity.REFERENCE / "london.youth.policing.static.json")
    row = fidelity.run(conversation, "static", reference)
    polis = row["polis_math"]
    assert (polis["k"], polis["k_polis"], polis["ari"]) == (2, 2, 1.0)
    assert polis["consensus_same"] and polis["repness_same"] == 2
    assert polis["missed"] == []
    assert row["history"]["k_polis"] == 3  # the export's stored groups: history
    report = {"conversations": {"london": {"voters": 26, "static/polis-like": row}}}
    report["totals"] = fidelity.totals(report)
    lines = fidelity.markdown(report).split("\n")
    header, rule, line = lines[:3]
    assert line.count("|") == header.count("|") == rule.count("|") == 13
    assert line.startswith("| london | 26 | static | polis-like | 2 / 2 | 1.00 | 100.0% | same |")
    assert "| 2/2 |" in line
    assert lines[-1].startswith("- static: same k on 1/1, ARI >= 0.99 on 1/1")
