"""Fidelity benchmark: our opinion groups against the ones Pol.is itself computed, on real exports.

    python benchmarks/fidelity.py                          # every fixture, static and replay
    python benchmarks/fidelity.py --static --out fidelity.json
    python benchmarks/fidelity.py --replay --window 60 path/to/export.zip

For each conversation (every folder of tests/fixtures, and any export folder or .zip given as an
argument) the groups come from ``polis_like.math.compute`` on all the votes at once (static) and
from ``polis_like.math.replay.replay``, which feeds the votes in time batches through the
incremental update (replay). They are compared with the ``group-id`` column of
participants-votes.csv: the number of groups, the adjusted Rand index over the participants both
cluster, and the overlap (Jaccard) of the two clustered sets. Prints a markdown table; ``--out``
writes the full report as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polis_like.conversation import Conversation  # noqa: E402
from polis_like.io import read_export  # noqa: E402
from polis_like.math import MathParams, compute  # noqa: E402
from polis_like.math.params import PROJECTION_SCALES  # noqa: E402
from polis_like.math.replay import DEFAULT_WINDOW_MS, replay  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
MODES = ("static", "replay")

#: The targets: the same number of groups, ARI at least this, clustered sets at least this alike.
TARGET_ARI = 0.9
TARGET_JACCARD = 0.99


def reference_groups(conversation: Conversation) -> np.ndarray:
    """Pol.is's group of each participant, shape (n_participants,); -1 where it left one out."""
    groups = conversation.reference_groups
    return np.array(
        [-1 if groups.get(pid) is None else groups[pid] for pid in conversation.participant_ids],
        dtype=np.int64,
    )


def compare(ours: np.ndarray, reference: np.ndarray) -> dict:
    """How alike two groupings of the same participants are (-1 = not clustered).

    Parameters
    ----------
    ours, reference : ndarray of shape (n_participants,)
        Group labels; the label values themselves do not matter.

    Returns
    -------
    dict with ``k`` and ``k_polis`` (numbers of groups), ``ari`` (adjusted Rand index over the
    participants both cluster; NaN when there are none), ``jaccard`` (overlap of the clustered
    sets), and the sizes ``clustered``, ``clustered_polis`` and ``clustered_both``.
    """
    ours = np.asarray(ours)
    reference = np.asarray(reference)
    if ours.shape != reference.shape:
        raise ValueError(f"groupings differ in length: {ours.shape} and {reference.shape}")
    mine, theirs = ours >= 0, reference >= 0
    both = mine & theirs
    either = int((mine | theirs).sum())
    ari = adjusted_rand_score(reference[both], ours[both]) if both.any() else float("nan")
    return {
        "k": len(np.unique(ours[mine])),
        "k_polis": len(np.unique(reference[theirs])),
        "ari": float(ari),
        "jaccard": int(both.sum()) / either if either else 1.0,
        "clustered": int(mine.sum()),
        "clustered_polis": int(theirs.sum()),
        "clustered_both": int(both.sum()),
    }


def missed_targets(row: dict) -> list[str]:
    """The targets a comparison misses, as short labels."""
    missed = []
    if row["k"] != row["k_polis"]:
        missed.append("k")
    if not row["ari"] >= TARGET_ARI:  # NaN misses too
        missed.append("ARI")
    if row["jaccard"] < TARGET_JACCARD:
        missed.append("clustered set")
    return missed


def run(
    conversation: Conversation,
    mode: str,
    window_ms: int = DEFAULT_WINDOW_MS,
    scale: str = "visible",
) -> dict:
    """Our groups for one conversation in one mode, compared with Pol.is's, with the math's time.

    ``scale`` is ``MathParams.projection_scale``: "visible" (our default) or "polis".
    """
    inputs = dict(
        n_participants=len(conversation.participant_ids),
        n_statements=len(conversation.statements),
        moderated_out=conversation.moderated_out(),
        meta=conversation.is_meta(),
        params=MathParams(projection_scale=scale),
    )
    started = time.perf_counter()
    if mode == "static":
        result, _ = compute(conversation.votes, **inputs)
    elif mode == "replay":
        result, _ = replay(conversation.votes, window_ms=window_ms, **inputs)
    else:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    seconds = time.perf_counter() - started
    row = compare(result.group, reference_groups(conversation))
    row.update(
        seconds=seconds,
        best_k=result.best_k,
        silhouettes={str(k): round(v, 4) for k, v in result.silhouettes.items()},
    )
    row["missed"] = missed_targets(row)
    return row


def markdown(report: dict) -> str:
    """The report as a markdown table, one row per conversation and mode."""
    lines = [
        (
            "| conversation | voters | mode | scale | k ours / Pol.is | ARI | clustered alike "
            "| clustered ours / Pol.is | time (s) | targets missed |"
        ),
        "| --- | ---: | --- | --- | :---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, entry in report["conversations"].items():
        for key, row in entry.items():
            if not isinstance(row, dict):
                continue
            mode, scale = key.split("/")
            lines.append(
                f"| {name} | {entry['voters']:,} | {mode} | {scale} "
                f"| {row['k']} / {row['k_polis']} "
                f"| {row['ari']:.2f} | {row['jaccard']:.1%} "
                f"| {row['clustered']:,} / {row['clustered_polis']:,} | {row['seconds']:.2f} "
                f"| {', '.join(row['missed']) or '-'} |"
            )
    return "\n".join(lines)


def machine_info() -> dict:
    """What the numbers were measured on."""
    import scipy
    import sklearn

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "load_start": os.getloadavg(),
        "commit": _commit(),
    }


def _commit() -> str | None:
    """The repository's current commit, when git can tell."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def export_paths(extra: list[Path]) -> list[Path]:
    """Every fixture conversation, then the exports given on the command line."""
    fixtures = sorted(p for p in FIXTURES.iterdir() if (p / "participants-votes.csv").exists())
    return fixtures + list(extra)


def main(argv: list[str] | None = None) -> None:
    """Compare every requested conversation and print the table."""
    args = _parser().parse_args(argv)
    modes = [m for m in MODES if getattr(args, m)] or list(MODES)
    scales = list(PROJECTION_SCALES) if args.scale == "both" else [args.scale]
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": machine_info(),
        "window_ms": int(args.window * 1000),
        "conversations": {},
    }
    paths = export_paths(args.exports) if not args.only_given else list(args.exports)
    for path in paths:
        conversation = read_export(path)
        if not conversation.reference_groups:
            print(
                f"[{path}] skipped: no participants-votes.csv, so no Pol.is groups", file=sys.stderr
            )
            continue
        name = path.name.removesuffix(".zip")
        entry = {
            "path": str(path),
            "voters": len(np.unique(conversation.votes.participant)),
            "statements": len(conversation.statements),
        }
        for mode in modes:
            for scale in scales:
                row = run(conversation, mode, window_ms=int(args.window * 1000), scale=scale)
                entry[f"{mode}/{scale}"] = row
                print(
                    f"[{name}] {mode}, {scale} scale: k {row['k']}/{row['k_polis']} "
                    f"ARI {row['ari']:.3f} alike {row['jaccard']:.3f} {row['seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
        report["conversations"][name] = entry
    report["machine"]["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "exports",
        nargs="*",
        type=Path,
        help="more Pol.is exports (folders or .zip) with participants-votes.csv",
    )
    parser.add_argument(
        "--only-given", action="store_true", help="compare only the exports given, not the fixtures"
    )
    parser.add_argument("--static", action="store_true", help="static compute only")
    parser.add_argument("--replay", action="store_true", help="replay only")
    parser.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_MS / 1000,
        help="replay batch window in seconds (default: the replay's own; "
        "larger is faster and coarser)",
    )
    parser.add_argument(
        "--scale",
        choices=(*PROJECTION_SCALES, "both"),
        default="both",
        help="the projection scale: only visible statements (our default), "
        "Pol.is's (moderated-out statements counted), or both (default)",
    )
    parser.add_argument("--out", type=Path, help="write the full report as JSON here")
    return parser


if __name__ == "__main__":
    main()
