"""The polis-like command as a user runs it: a real process, real exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polis_like.launcher.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_analyze_prints_one_json_document_keyed_by_export_ids():
    out = run("analyze", str(FIXTURES / "brexit-consensus"))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["k"] == len(doc["groups"]) >= 2
    assert doc["n_participants"] == 204
    assert doc["n_statements"] == 50
    assert doc["n_votes"] == 5303
    members = [p for g in doc["groups"] for p in g["members"]]
    assert len(members) == len(set(members))
    assert all(doc["participants"][p]["group"] is not None for p in members)
    for group in doc["groups"]:
        assert 1 <= len(group["representative"]) <= 5
        for rep in group["representative"]:
            assert rep["statement"] in doc["priority"]
            assert rep["direction"] in ("agree", "disagree")
            assert 0 < rep["p_success"] < 1
    assert set(doc["consensus"]) == {"agree", "disagree"}
    assert all(isinstance(v, float) for v in doc["group_informed_consensus"].values())
    assert set(doc["priority"]) == {str(i) for i in range(50)}


def test_analyze_marks_unclustered_participants_with_null_group():
    doc = json.loads(run("analyze", str(FIXTURES / "vtaiwan.uberx")).stdout)
    unclustered = [p for p, v in doc["participants"].items() if v["group"] is None]
    assert 500 < len(unclustered) < 1921
    assert doc["n_in_conversation"] == 1921 - len(unclustered)


def test_text_report_names_groups_statements_and_percentages():
    out = run("analyze", str(FIXTURES / "15-per-hour-seattle"), "--format", "text")
    assert out.returncode == 0, out.stderr
    assert "$15/hour" in out.stdout
    assert "Group A:" in out.stdout and "Group B:" in out.stdout
    assert "% agree" in out.stdout
    assert "Most agree with" in out.stdout


def _groups_against_polis_math(name: str, mode: str, *extra: str) -> tuple[int, int, float]:
    """(our k, Pol.is math's k, ARI) of ``polis-like analyze`` on a fixture."""
    from sklearn.metrics import adjusted_rand_score

    doc = json.loads(run("analyze", str(FIXTURES / name), *extra).stdout)
    reference = json.loads((FIXTURES / "polis-math" / f"{name}.{mode}.json").read_text())
    ours = {p: v["group"] for p, v in doc["participants"].items() if v["group"] is not None}
    assert set(ours) == set(reference["groups"])  # the same participants clustered
    shared = sorted(ours)
    ari = adjusted_rand_score([reference["groups"][p] for p in shared], [ours[p] for p in shared])
    return doc["k"], reference["k"], ari


def test_analyze_by_default_finds_the_groups_pol_is_s_math_finds():
    # bg2050-volunteers has 55 of 371 statements rejected: the default (Pol.is's) projection
    # scale counts them, as Pol.is does.
    k, k_polis, ari = _groups_against_polis_math("bg2050-volunteers", "static")
    assert (k, ari) == (k_polis, 1.0)


def test_analyze_replay_batches_as_pol_is_s_replay_and_reaches_its_groups():
    # brexit-consensus: 99 batches of 600 s; Pol.is's replay ends on k = 4 (its static k is 3).
    k, k_polis, ari = _groups_against_polis_math(
        "brexit-consensus", "replay", "--replay", "--window", "600"
    )
    assert (k, k_polis, ari) == (4, 4, 1.0)


def test_timings_go_to_stderr_so_stdout_stays_reproducible():
    out = run("analyze", str(FIXTURES / "london.youth.policing"), "--timings")
    assert "pca" in out.stderr and "total" in out.stderr
    assert "timings" not in json.loads(out.stdout)


def test_replay_shows_progress_on_stderr_and_prints_the_result():
    out = run("analyze", str(FIXTURES / "london.youth.policing"), "--replay", "--window", "60")
    assert out.returncode == 0, out.stderr
    assert "replay" in out.stderr
    assert json.loads(out.stdout)["run"]["replay"] is True


def test_same_seed_same_output_and_umap_is_selectable():
    first = run("analyze", str(FIXTURES / "london.youth.policing"), "--seed", "5")
    second = run("analyze", str(FIXTURES / "london.youth.policing"), "--seed", "5")
    assert first.stdout == second.stdout
    umap = run("analyze", str(FIXTURES / "brexit-consensus"), "--reducer", "umap")
    assert umap.returncode == 0, umap.stderr
    assert json.loads(umap.stdout)["run"]["reducer"] == "umap"


def assert_one_line_error(out: subprocess.CompletedProcess, *fragments: str) -> None:
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_folder_is_one_line_and_status_2(tmp_path):
    assert_one_line_error(run("analyze", str(tmp_path / "nope")), "nope")


def test_missing_column_names_the_file_and_line(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "london.youth.policing", folder)
    text = (folder / "votes.csv").read_text().replace("voter-id", "voter")
    (folder / "votes.csv").write_text(text)
    assert_one_line_error(run("analyze", str(folder)), "votes.csv", "voter-id")


def test_malformed_row_names_the_file_and_line(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "london.youth.policing", folder)
    lines = (folder / "votes.csv").read_text().splitlines()
    lines[4] = lines[4] + ",surplus"
    (folder / "votes.csv").write_text("\n".join(lines) + "\n")
    assert_one_line_error(run("analyze", str(folder)), "votes.csv:5")


@pytest.mark.parametrize(
    "args",
    [
        ["analyze"],
        ["analyze", "x", "--reducer", "tsne"],
        ["analyze", "x", "--window", "0"],
        ["analyze", "x", "--seed", "a"],
    ],
)
def test_bad_arguments_exit_with_status_2_and_no_traceback(args):
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "usage:" in out.stderr
