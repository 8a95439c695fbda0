"""The conversations of the scale benchmark, prepared once as .npz files the children load.

A child that loads prepared arrays measures the math, not the generator's temporaries (which
would otherwise set the process's peak RSS).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import synthetic

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Case:
    """One benchmark case: a fixture, or a synthetic conversation (and an update on it)."""

    name: str
    n_participants: int = 0
    n_statements: int = 0
    fixture: str | None = None
    new_votes: int = 0  # > 0: time ``update`` with the latest new_votes events

    @property
    def label(self) -> str:
        """How the report names the case."""
        if self.fixture:
            return f"{self.fixture} (fixture)"
        size = f"{self.n_participants:,} x {self.n_statements:,}"
        return f"{self.new_votes:,} new votes on {size}" if self.new_votes else size

    def data_name(self, votes_per_participant: int, seed: int) -> str:
        """File name of the prepared data (the update case shares its conversation's)."""
        if self.fixture:
            return f"{self.fixture}.npz"
        return (
            f"synthetic-{self.n_participants}x{self.n_statements}-v{votes_per_participant}"
            f"-s{seed}-g{synthetic.GENERATOR_VERSION}.npz"
        )


CASES = {
    case.name: case
    for case in (
        Case("vtaiwan", fixture="vtaiwan.uberx"),
        Case("10k", 10_000, 1_000),
        Case("100k", 100_000, 1_000),
        Case("update", 100_000, 1_000, new_votes=1_000),
        Case("100kx10k", 100_000, 10_000),
        Case("1M", 1_000_000, 1_000),
    )
}


def prepare(case: Case, cache_dir: Path, votes_per_participant: int = 30, seed: int = 0) -> Path:
    """Write (once) the arrays of ``case`` to ``cache_dir`` and return the file."""
    path = cache_dir / case.data_name(votes_per_participant, seed)
    if path.exists() and not case.fixture:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    if case.fixture:
        arrays = export_arrays(FIXTURES / case.fixture)
    else:
        events, truth = synthetic.generate(
            case.n_participants, case.n_statements, votes_per_participant, seed=seed
        )
        no_moderation = np.zeros(case.n_statements, dtype=bool)
        arrays = dict(
            timestamp_ms=events.timestamp_ms,
            participant=events.participant,
            statement=events.statement,
            vote=events.vote,
            truth=truth,
            n_participants=np.array(case.n_participants),
            n_statements=np.array(case.n_statements),
            moderated_out=no_moderation,
            meta=no_moderation,
        )
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
    return path


def export_arrays(folder: Path) -> dict[str, np.ndarray]:
    """A Pol.is export (folder or .zip) as arrays: with ``polis_like.io.read_export`` if present,
    else read here."""
    try:
        from polis_like.io import read_export
    except ImportError:
        return _read_csv_export(folder)
    conversation = read_export(folder)
    events = conversation.votes
    return dict(
        timestamp_ms=events.timestamp_ms,
        participant=events.participant,
        statement=events.statement,
        vote=events.vote,
        n_participants=np.array(len(conversation.participant_ids)),
        n_statements=np.array(len(conversation.statements)),
        moderated_out=conversation.moderated_out(),
        meta=conversation.is_meta(),
    )


def _read_csv_export(folder: Path) -> dict[str, np.ndarray]:
    """votes.csv and comments.csv of a Pol.is export, minimally (no meta flags in the export)."""
    with open(folder / "comments.csv", newline="", encoding="utf-8") as f:
        comments = {row["comment-id"]: int(row["moderated"]) for row in csv.DictReader(f)}
    with open(folder / "votes.csv", newline="", encoding="utf-8") as f:
        rows = [
            (int(r["timestamp"]), r["voter-id"], r["comment-id"], int(r["vote"]))
            for r in csv.DictReader(f)
        ]
    statement_ids = sorted(comments, key=int)
    voter_ids = sorted({r[1] for r in rows}, key=int)
    s_index = {sid: i for i, sid in enumerate(statement_ids)}
    p_index = {pid: i for i, pid in enumerate(voter_ids)}
    return dict(
        timestamp_ms=np.array([r[0] for r in rows], dtype=np.int64),
        participant=np.array([p_index[r[1]] for r in rows], dtype=np.int32),
        statement=np.array([s_index[r[2]] for r in rows], dtype=np.int32),
        vote=np.array([r[3] for r in rows], dtype=np.int8),
        n_participants=np.array(len(voter_ids)),
        n_statements=np.array(len(statement_ids)),
        moderated_out=np.array([comments[s] == -1 for s in statement_ids]),
        meta=np.zeros(len(statement_ids), dtype=bool),
    )
