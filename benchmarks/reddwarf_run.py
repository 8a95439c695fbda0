"""Child process: run red-dwarf 0.4.0's Pol.is pipeline once on a prepared case.

Run by scale.py with the interpreter of benchmarks/.venv-reddwarf:

    python reddwarf_run.py CASE.npz OUT.json [--random-state 0]

Timed: ``reddwarf.implementations.polis.run_pipeline`` (its whole Pol.is pipeline: vote matrix
pivot, moderation filter, PCA, participant filter, k-means with silhouette over k = 2..5,
group statistics, priorities, consensus and repness). Not timed: reading the case and turning
its arrays into the pandas DataFrame of vote records that ``run_pipeline`` takes (the latest
vote per participant and statement, which its pivot needs), and a warm-up run on a tiny
conversation that pays for the lazy imports.
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import wraps

import numpy as np

import measure

# Stage of each function that reddwarf.implementations.base calls, named like ours.
STAGES = {
    "generate_raw_matrix": "matrix",
    "simple_filter_matrix": "matrix",
    "run_reducer": "pca",
    "get_clusterable_participant_ids": "in_conversation",
    "run_clusterer": "clustering",
    "calculate_comment_statistics_dataframes": "statistics",
    "populate_priority_calculations_into_statements_df": "statistics",
    "select_consensus_statements": "statistics",
    "select_representative_statements": "statistics",
}


def vote_records(case: dict[str, np.ndarray]):
    """The latest vote of each (participant, statement) as red-dwarf's DataFrame of records."""
    import pandas as pd

    order = np.lexsort((case["timestamp_ms"], case["statement"], case["participant"]))
    n_statements = int(case["n_statements"])
    pair = case["participant"][order].astype(np.int64) * n_statements + case["statement"][order]
    last = order[np.append(pair[1:] != pair[:-1], True)]
    return pd.DataFrame(
        {
            "participant_id": case["participant"][last].astype(np.int64),
            "statement_id": case["statement"][last].astype(np.int64),
            "vote": case["vote"][last].astype(np.float64),
            "modified": case["timestamp_ms"][last],
        }
    )


def instrument(timings: dict[str, float]) -> None:
    """Wrap the pipeline's steps (looked up in base's namespace) to add their time to a stage."""
    from reddwarf.implementations import base

    def timed(fn, stage):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started

        return wrapper

    for name, stage in STAGES.items():
        setattr(base, name, timed(getattr(base, name), stage))


def main() -> None:
    """Parse the arguments, run once, write the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("out")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--labels", action="store_true", help="also write each participant's group (-1: none)"
    )
    args = parser.parse_args()
    try:
        warnings.simplefilter("ignore")  # pandas / pydantic deprecation chatter
        from importlib.metadata import version

        from reddwarf.implementations.polis import run_pipeline

        case = measure.load_case(args.case)
        votes = vote_records(case)
        mod_out = [int(i) for i in np.flatnonzero(case["moderated_out"])]
        meta = [int(i) for i in np.flatnonzero(case["meta"])]
        truth = case.get("truth")
        n_participants = int(case["n_participants"])
        del case

        warm = vote_records(_tiny_case())
        run_pipeline(votes=warm, random_state=args.random_state)

        timings: dict[str, float] = {}
        instrument(timings)
        result, record = measure.measure(
            lambda: run_pipeline(
                votes=votes,
                mod_out_statement_ids=mod_out,
                meta_statement_ids=meta,
                random_state=args.random_state,
            )
        )
        timings["other"] = max(record["wall_s"] - sum(timings.values()), 0.0)
        labels = result.clusterer.labels_ if result.clusterer is not None else np.empty(0)
        record.update(
            status="ok",
            timings=timings,
            n_votes=len(votes),
            k=len(np.unique(labels)),
            n_clustered=len(labels),
            ari=_ari(truth, result.participants_df) if truth is not None else None,
            versions={
                "red-dwarf": version("red-dwarf"),
                "pandas": version("pandas"),
                "numpy": np.__version__,
                "scikit-learn": version("scikit-learn"),
            },
        )
        if args.labels:
            record["labels"] = _labels(result.participants_df, n_participants).tolist()
        measure.emit(args.out, record)
    except MemoryError as exc:
        measure.fail(args.out, exc)


def _ari(truth: np.ndarray, participants) -> float:
    """Adjusted Rand index of the groups against the planted ones, over clustered participants."""
    from sklearn.metrics import adjusted_rand_score

    clustered = participants[participants["to_cluster"]]
    ids = clustered.index.to_numpy(dtype=np.int64)
    return float(adjusted_rand_score(truth[ids], clustered["cluster_id"].to_numpy(dtype=np.int64)))


def _labels(participants, n_participants: int) -> np.ndarray:
    """Each participant's group, indexed by participant (-1: not clustered)."""
    labels = np.full(n_participants, -1, np.int64)
    clustered = participants[participants["to_cluster"]]
    ids = clustered.index.to_numpy(dtype=np.int64)
    labels[ids] = clustered["cluster_id"].to_numpy(dtype=np.int64)
    return labels


def _tiny_case() -> dict[str, np.ndarray]:
    """A 60 x 20 conversation with every participant voting 10 times, for the warm-up."""
    rng = np.random.default_rng(0)
    p = np.repeat(np.arange(60), 10)
    s = np.concatenate([rng.permutation(20)[:10] for _ in range(60)])
    return {
        "timestamp_ms": np.arange(600),
        "participant": p,
        "statement": s,
        "vote": rng.integers(-1, 2, 600),
        "n_statements": np.array(20),
    }


if __name__ == "__main__":
    main()
