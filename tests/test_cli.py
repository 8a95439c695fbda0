"""The polis-like command as a user runs it: a real process, real exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polis_like.launcher.cli", *args],
        input=stdin,
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


# -- polis-like admin -------------------------------------------------------------------------


def admin(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``polis-like admin ARGS --database-url URL``."""
    return run("admin", *args, "--database-url", url, stdin=stdin)


@pytest.fixture
def accounts_db(tmp_path) -> str:
    """A SQLite database with the admin ``alice`` and the moderator ``bob`` (password
    ``bobs-password``), made by ``polis-like admin create``."""
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    assert admin(url, "create", "alice").returncode == 0
    made = admin(
        url, "create", "bob", "--role", "moderator", "--password-stdin", stdin="bobs-password\n"
    )
    assert made.returncode == 0, made.stderr
    return url


def _api(url: str):
    from server.app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "k"})


def _signs_in(app, name: str, password: str) -> int:
    body = {"name": name, "password": password}
    return app.test_client().post("/api/v1/session", json=body).status_code


def _token_works(app, token: str) -> bool:
    headers = {"Authorization": f"Bearer {token}"}
    return app.test_client().get("/api/v1/session", headers=headers).status_code == 200


def test_admin_list_shows_each_account_s_role_state_and_tokens(accounts_db):
    out = admin(accounts_db, "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "STATE", "TOKENS", "CREATED", "(UTC)"]
    assert lines[1].split()[:4] == ["alice", "admin", "enabled", "1"]
    assert lines[2].split()[:4] == ["bob", "moderator", "enabled", "1"]
    assert admin(accounts_db, "disable", "bob").returncode == 0
    again = admin(accounts_db, "list").stdout.splitlines()
    assert again[2].split()[:4] == ["bob", "moderator", "disabled", "1"]


def test_admin_disable_and_enable_stop_and_restore_a_password_and_a_token(accounts_db):
    minted = admin(accounts_db, "token", "bob")
    assert minted.returncode == 0, minted.stderr
    assert minted.stdout.startswith("new API token for 'bob': pl_")
    token = minted.stdout.split(": ", 1)[1].split()[0]
    app = _api(accounts_db)
    try:
        assert _token_works(app, token) and _signs_in(app, "bob", "bobs-password") == 200

        out = admin(accounts_db, "disable", "bob")
        assert out.returncode == 0, out.stderr
        assert out.stdout == (
            "disabled moderator 'bob': its password, session cookies and API tokens "
            "no longer work\n"
        )
        assert not _token_works(app, token) and _signs_in(app, "bob", "bobs-password") == 403
        again = admin(accounts_db, "disable", "bob")
        assert again.stdout == "moderator 'bob' was already disabled\n"

        out = admin(accounts_db, "enable", "bob")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("enabled moderator 'bob'")
        assert _token_works(app, token) and _signs_in(app, "bob", "bobs-password") == 200
    finally:
        app.extensions["polis_like.engine"].dispose()


def test_admin_password_prints_a_new_one_or_reads_it_and_revoke_tokens_counts(accounts_db):
    out = admin(accounts_db, "password", "bob")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("new password for 'bob'; its session cookies have ended\n")
    generated = out.stdout.split("password: ", 1)[1].split()[0]
    app = _api(accounts_db)
    try:
        assert _signs_in(app, "bob", "bobs-password") == 401
        assert _signs_in(app, "bob", generated) == 200
        given = admin(
            accounts_db, "password", "bob", "--password-stdin", stdin="a given password\n"
        )
        assert given.returncode == 0 and "password:" not in given.stdout
        assert _signs_in(app, "bob", "a given password") == 200
        short = admin(accounts_db, "password", "bob", "--password-stdin", stdin="short\n")
        assert_one_line_error(short, "at least 8 characters")
        assert _signs_in(app, "bob", "a given password") == 200  # unchanged

        admin(accounts_db, "token", "bob")
        out = admin(accounts_db, "revoke-tokens", "bob")
        assert out.returncode == 0 and out.stdout == "revoked 2 API tokens of 'bob'\n"
    finally:
        app.extensions["polis_like.engine"].dispose()


def test_admin_commands_on_an_unknown_name_fail_in_one_line(accounts_db):
    for action in ("disable", "enable", "password", "token", "revoke-tokens"):
        out = admin(accounts_db, action, "nobody")
        assert_one_line_error(out, "polis-like: error: no account named 'nobody'")


def test_the_last_admin_who_can_sign_in_cannot_be_disabled_from_the_command_line(accounts_db):
    out = admin(accounts_db, "disable", "alice")
    assert_one_line_error(out, "this is the last admin account that can sign in")
    assert admin(accounts_db, "create", "carol").returncode == 0
    assert admin(accounts_db, "disable", "alice").returncode == 0
    assert_one_line_error(admin(accounts_db, "disable", "carol"), "last admin")
