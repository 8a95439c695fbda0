"""Fidelity benchmark: our groups and statements against Pol.is's own math on the same votes.

    python benchmarks/fidelity.py                          # every fixture, static and replay
    python benchmarks/fidelity.py --static --with-reddwarf --out fidelity.json
    python benchmarks/fidelity.py --replay --window 60 path/to/export.zip --reference DIR

For each conversation (every folder of tests/fixtures, and any export folder or .zip given as an
argument) our result comes from ``polis_like.math.compute`` on all the votes at once (static) or
from ``polis_like.math.replay.replay`` in time batches of ``--window`` seconds (replay, 600 by
default, as the reference was made). It is compared with two anchors, side by side:

- **Pol.is math**: what Pol.is's own math computes from the same votes (``<name>.<mode>.json`` in
  ``--reference``, by default tests/fixtures/polis-math): the number of groups, the adjusted
  Rand index (ARI), the clustered sets, the majority (consensus) lists and the representative
  statements of each matched group. This is the anchor the targets are set against.
- **history**: the ``group-id`` column of participants-votes.csv, groups Pol.is stored years ago
  under older rules (k and ARI only; no current code reproduces it).

``--with-reddwarf`` adds red-dwarf 0.4.0 (static only; it has no incremental update), run in
benchmarks/.venv-reddwarf (created on first use), against both anchors. Prints a markdown
table; ``--out`` writes the full report as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from polis_like.analysis import analyze  # noqa: E402
from polis_like.conversation import Conversation  # noqa: E402
from polis_like.fidelity import (  # noqa: E402
    MODES,
    Reference,
    compare,
    compare_groups,
    labels_of,
    reference_path,
)
from polis_like.io import read_export  # noqa: E402
from polis_like.math.params import PROJECTION_SCALES  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE = FIXTURES / "polis-math"
WINDOW_S = 600.0

#: The targets against Pol.is's math (the issue's): per conversation, the same k and at least
#: this ARI; consensus lists identical (static); representative statements identical for at
#: least this share of all groups (static).
TARGET_ARI = {"static": 0.99, "replay": 0.95}
TARGET_REPNESS_SHARE = 0.95


def history_groups(conversation: Conversation) -> np.ndarray:
    """The export's ``group-id`` of each participant, shape (n_participants,); -1 where none."""
    groups = conversation.reference_groups
    return np.array(
        [-1 if groups.get(pid) is None else groups[pid] for pid in conversation.participant_ids],
        dtype=np.int64,
    )


def missed_targets(row: dict, mode: str) -> list[str]:
    """The targets a comparison with Pol.is's math misses, as short labels."""
    missed = []
    if row["k"] != row["k_polis"]:
        missed.append("k")
    if not row["ari"] >= TARGET_ARI[mode]:  # NaN misses too
        missed.append("ARI")
    if mode == "static" and not row.get("consensus_same", True):
        missed.append("consensus")
    return missed


def run(
    conversation: Conversation,
    mode: str,
    reference: Reference | None,
    window_s: float = WINDOW_S,
    scale: str = "polis",
) -> dict:
    """Our result for one conversation in one mode against both anchors, with the math's time."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    started = time.perf_counter()
    result = analyze(
        conversation, replay_votes=mode == "replay", window_s=window_s, projection_scale=scale
    )
    row: dict = {"seconds": time.perf_counter() - started, "k": result.k}
    if reference is not None:
        polis = compare(result, conversation, reference)
        polis["missed"] = missed_targets(polis, mode)
        row["polis_math"] = polis
    row["history"] = compare_groups(result.group, history_groups(conversation))
    return row


def reddwarf(path: Path, python: Path) -> np.ndarray:
    """red-dwarf 0.4.0's group of each participant (-1: not clustered), run in its own venv."""
    import cases

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "case.npz"
        np.savez(data, **cases.export_arrays(path))
        out = Path(folder) / "out.json"
        argv = [str(python), str(HERE / "reddwarf_run.py"), str(data), str(out), "--labels"]
        subprocess.run(argv, check=True, cwd=HERE, timeout=1800)
        record = json.loads(out.read_text())
    if record.get("status") != "ok":
        raise RuntimeError(f"red-dwarf failed on {path}: {record}")
    return np.asarray(record["labels"], dtype=np.int64)


def markdown(report: dict) -> str:
    """The report as a markdown table, one row per conversation, mode and engine."""
    lines = [
        (
            "| conversation | voters | mode | engine | k ours / Pol.is math | ARI "
            "| clustered alike | consensus | repness same | history: k / ARI | time (s) "
            "| targets missed |"
        ),
        "| --- | ---: | --- | --- | :---: | ---: | ---: | :---: | ---: | ---: | ---: | --- |",
    ]
    for name, entry in report["conversations"].items():
        for key, row in entry.items():
            if not isinstance(row, dict) or "history" not in row:
                continue
            mode, engine = key.split("/")
            polis = row.get("polis_math")
            history = row["history"]
            if polis:
                cells = (
                    f"{polis['k']} / {polis['k_polis']} | {polis['ari']:.2f} "
                    f"| {polis['jaccard']:.1%} "
                    f"| {'same' if polis.get('consensus_same', False) else 'differ'} "
                    f"| {polis['repness_same']}/{polis['repness_groups']}"
                    if "repness_same" in polis
                    else f"{polis['k']} / {polis['k_polis']} | {polis['ari']:.2f} "
                    f"| {polis['jaccard']:.1%} | – | –"
                )
                missed = ", ".join(polis.get("missed", [])) or "-"
            else:
                cells, missed = f"{row['k']} / – | – | – | – | –", "(no reference)"
            seconds = f"{row['seconds']:.2f}" if "seconds" in row else "–"
            lines.append(
                f"| {name} | {entry['voters']:,} | {mode} | {engine} | {cells} "
                f"| {history['k_polis']} / {history['ari']:.2f} | {seconds} | {missed} |"
            )
    totals = report.get("totals", {})
    if totals:
        lines.append("")
        for mode, total in totals.items():
            lines.append(
                f"- {mode}: same k on {total['same_k']}/{total['conversations']}, "
                f"ARI >= {TARGET_ARI[mode]} on {total['ari_ok']}/{total['conversations']}, "
                f"consensus identical on {total['consensus_same']}/{total['conversations']}, "
                f"representative statements identical for {total['repness_same']}/"
                f"{total['repness_groups']} groups"
            )
    return "\n".join(lines)


def totals(report: dict) -> dict:
    """Per mode, over the conversations with a reference: how many meet each target."""
    out = {}
    for mode in MODES:
        rows = [
            entry[f"{mode}/polis-like"]["polis_math"]
            for entry in report["conversations"].values()
            if "polis_math" in entry.get(f"{mode}/polis-like", {})
        ]
        if not rows:
            continue
        out[mode] = {
            "conversations": len(rows),
            "same_k": sum(r["k"] == r["k_polis"] for r in rows),
            "ari_ok": sum(r["ari"] >= TARGET_ARI[mode] for r in rows),
            "consensus_same": sum(bool(r["consensus_same"]) for r in rows),
            "repness_same": sum(r["repness_same"] for r in rows),
            "repness_groups": sum(r["repness_groups"] for r in rows),
        }
    return out


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
    report: dict = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": machine_info(),
        "window_s": args.window,
        "scale": args.scale,
        "conversations": {},
    }
    python = None
    if args.with_reddwarf:
        import scale

        python = scale._reddwarf_venv()
    paths = export_paths(args.exports) if not args.only_given else list(args.exports)
    for path in paths:
        conversation = read_export(path)
        name = path.name.removesuffix(".zip")
        entry: dict = {
            "path": str(path),
            "voters": len(np.unique(conversation.votes.participant)),
            "statements": len(conversation.statements),
        }
        for mode in modes:
            file = reference_path(args.reference, name, mode)
            reference = Reference.read(file) if file.exists() else None
            if reference is not None and mode == "replay" and reference.window_s != args.window:
                print(
                    f"[{name}] the replay reference used {reference.window_s} s windows, "
                    f"not {args.window} s: its figures compare unlike batches",
                    file=sys.stderr,
                )
            row = run(conversation, mode, reference, window_s=args.window, scale=args.scale)
            entry[f"{mode}/polis-like"] = row
            polis = row.get("polis_math")
            print(
                f"[{name}] {mode}: k {row['k']}"
                + (f"/{polis['k_polis']} ARI {polis['ari']:.3f}" if polis else " (no reference)")
                + f" {row['seconds']:.1f}s",
                file=sys.stderr,
                flush=True,
            )
            if mode == "static" and python is not None:
                labels = reddwarf(path, python)
                rd: dict = {"k": len(np.unique(labels[labels >= 0]))}
                if reference is not None:
                    rd_polis = compare_groups(labels, labels_of(conversation, reference.groups))
                    rd_polis["missed"] = missed_targets(rd_polis, mode)
                    rd["polis_math"] = rd_polis
                rd["history"] = compare_groups(labels, history_groups(conversation))
                entry["static/red-dwarf 0.4.0"] = rd
        report["conversations"][name] = entry
    report["totals"] = totals(report)
    report["machine"]["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "exports", nargs="*", type=Path, help="more Pol.is exports (folders or .zip)"
    )
    parser.add_argument(
        "--only-given", action="store_true", help="compare only the exports given, not the fixtures"
    )
    parser.add_argument("--static", action="store_true", help="static compute only")
    parser.add_argument("--replay", action="store_true", help="replay only")
    parser.add_argument(
        "--window",
        type=float,
        default=WINDOW_S,
        help="replay batch window in seconds (default: 600, as the reference was made)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=REFERENCE,
        help="the folder of Pol.is math references, <name>.<mode>.json "
        "(default: tests/fixtures/polis-math)",
    )
    parser.add_argument(
        "--scale",
        choices=PROJECTION_SCALES,
        default="polis",
        help="the projection scale (default: polis, the math's default)",
    )
    parser.add_argument(
        "--with-reddwarf",
        action="store_true",
        help="add red-dwarf 0.4.0 (static; creates benchmarks/.venv-reddwarf on first use)",
    )
    parser.add_argument("--out", type=Path, help="write the full report as JSON here")
    return parser


if __name__ == "__main__":
    main()
