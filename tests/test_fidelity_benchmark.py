"""The helpers of the fidelity benchmark (benchmarks/fidelity.py)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fidelity.py"
_SPEC = importlib.util.spec_from_file_location("fidelity", _PATH)
fidelity = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fidelity)


def test_relabelled_groups_are_identical():
    ours = np.array([0, 0, 1, 1, -1])
    polis = np.array([5, 5, 2, 2, -1])
    row = fidelity.compare(ours, polis)
    assert row["ari"] == pytest.approx(1.0)
    assert (row["k"], row["k_polis"]) == (2, 2)
    assert row["jaccard"] == 1.0
    assert fidelity.missed_targets(row) == []


def test_ari_counts_only_participants_both_cluster():
    ours = np.array([0, 0, 1, 1, 1, -1])
    polis = np.array([0, 0, 1, 1, -1, 0])
    row = fidelity.compare(ours, polis)
    assert row["ari"] == pytest.approx(1.0)
    assert (row["clustered"], row["clustered_polis"], row["clustered_both"]) == (5, 5, 4)
    assert row["jaccard"] == pytest.approx(4 / 6)
    assert fidelity.missed_targets(row) == ["clustered set"]


def test_a_different_k_and_a_poor_ari_are_both_reported():
    ours = np.array([0, 1, 2, 0, 1, 2])
    polis = np.array([0, 0, 0, 1, 1, 1])
    row = fidelity.compare(ours, polis)
    assert (row["k"], row["k_polis"]) == (3, 2)
    assert row["ari"] < 0.9
    assert fidelity.missed_targets(row) == ["k", "ARI"]


def test_nobody_clustered_by_both_gives_nan_ari_and_misses_the_target():
    row = fidelity.compare(np.array([0, -1]), np.array([-1, 0]))
    assert math.isnan(row["ari"])
    assert "ARI" in fidelity.missed_targets(row)


def test_groupings_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="groupings differ in length"):
        fidelity.compare(np.zeros(3), np.zeros(4))


def test_reference_groups_follow_participant_order(load_conversation):
    conversation = load_conversation("london.youth.policing")
    reference = fidelity.reference_groups(conversation)
    assert reference.shape == (len(conversation.participant_ids),)
    for pid, group in zip(conversation.participant_ids, reference, strict=True):
        expected = conversation.reference_groups.get(pid)
        assert group == (-1 if expected is None else expected)


def test_a_static_run_reports_every_column_of_the_table(load_conversation):
    conversation = load_conversation("london.youth.policing")
    row = fidelity.run(conversation, "static")
    assert row["k_polis"] == 3  # Pol.is's own groups in the export
    assert row["clustered_polis"] == 24
    assert row["missed"] == fidelity.missed_targets(row)
    report = {"conversations": {"london": {"voters": 26, "static/visible": row}}}
    header, rule, line = fidelity.markdown(report).split("\n")
    assert line.count("|") == header.count("|") == rule.count("|") == 11
    assert line.startswith("| london | 26 | static | visible |")
    assert f"| {row['k']} / 3 | {row['ari']:.2f} |" in line
    assert f"| {row['clustered']} / 24 |" in line


def test_the_polis_scale_changes_the_map_where_statements_were_moderated_out(load_conversation):
    conversation = load_conversation("bg2050-volunteers")  # 55 of 371 statements rejected
    visible = fidelity.run(conversation, "static", scale="visible")
    polis = fidelity.run(conversation, "static", scale="polis")
    assert polis["ari"] > visible["ari"]
