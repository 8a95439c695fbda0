"""Time ``polis-like analyze`` as a whole process: start, read the CSV files, compute, write JSON.

    python benchmarks/ingest_analyze.py                          # vtaiwan, 100k, 1M; 3 runs each
    python benchmarks/ingest_analyze.py --cases vtaiwan,100k --repeat 5
    python benchmarks/ingest_analyze.py --checkout /path/to/other/checkout   # e.g. main, before

Each run is a fresh ``python -m polis_like.launcher.cli analyze DIR`` child writing its JSON to a
file; its wall time is measured around the process, its CPU time (user + system, all threads)
and peak RSS are the child's ``ru_utime + ru_stime`` and ``ru_maxrss`` (``os.wait4``). One run
on vtaiwan first fills the compiled-kernel caches, as any earlier command would have; its time
is reported apart. The synthetic exports (``benchmarks/synthetic.py``, 30 votes per
participant, seed 0) are written once with the project's own writer (``polis_like.io.write``)
into the cache folder; 1M x 1,000 takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Read before polis_like is imported (by synthetic): it sets NUMBA_CACHE_DIR for its own process,
# and each checkout's children should choose their cache themselves.
_NUMBA_CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR")

import synthetic  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures"
CASES = {
    "vtaiwan": None,
    "100k": (100_000, 1_000),
    "1M": (1_000_000, 1_000),
}


def prepare(name: str, cache_dir: Path) -> Path:
    """The export folder of case ``name`` (written once for a synthetic case)."""
    if CASES[name] is None:
        return FIXTURES / "vtaiwan.uberx"
    n_participants, n_statements = CASES[name]
    folder = cache_dir / (
        f"analyze-export-{n_participants}x{n_statements}-v30-s0-g{synthetic.GENERATOR_VERSION}"
    )
    if (folder / "DONE").exists():
        return folder
    from polis_like.conversation import Conversation, Statement
    from polis_like.io import write_export

    print(f"writing {folder} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    events, _ = synthetic.generate(n_participants, n_statements, 30, seed=0)
    conversation = Conversation(
        summary={"topic": f"synthetic {n_participants:,} x {n_statements:,}"},
        statements=[Statement(str(i), f"Statement {i}") for i in range(n_statements)],
        participant_ids=[str(i) for i in range(n_participants)],
        votes=events,
    )
    write_export(conversation, folder)
    (folder / "DONE").write_text(f"{time.monotonic() - started:.1f} s to write\n")
    return folder


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> dict:
    """One child: wall seconds, peak RSS in MB, exit status, the end of its stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            started = time.monotonic()
            proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        return {
            "wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss * 1024 / 1e6,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "status": proc.returncode,
            "out_bytes": out.stat().st_size,
            "stderr": err.read_text(errors="replace")[-300:],
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES)
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--checkout",
        type=Path,
        default=ROOT,
        help="the polis-like source to run (default: this one)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "polis-like-bench"
    )
    parser.add_argument("--out", type=Path, help="write the raw runs as JSON")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    checkout = args.checkout.resolve()
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.pop("NUMBA_CACHE_DIR", None)
    if _NUMBA_CACHE_DIR is not None:
        env["NUMBA_CACHE_DIR"] = _NUMBA_CACHE_DIR
    report: dict = {"checkout": str(checkout), "load_start": os.getloadavg(), "cases": {}}
    folders = {name: prepare(name, args.cache_dir.resolve()) for name in names}
    analyze = [sys.executable, "-m", "polis_like.launcher.cli", "analyze"]
    first = run_once(analyze + [str(prepare("vtaiwan", args.cache_dir))], env, checkout)
    report["first_run_vtaiwan"] = first  # fills the compiled-kernel caches
    for name in names:
        command = analyze + [str(folders[name])]
        runs = [run_once(command, env, checkout) for _ in range(args.repeat)]
        failed = [r for r in runs if r["status"] != 0]
        if failed:
            sys.exit(f"[{name}] failed: {failed[0]['stderr']}")
        entry = {
            "runs": runs,
            "median_wall_s": statistics.median(r["wall_s"] for r in runs),
            "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        }
        report["cases"][name] = entry
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
        print(
            f"[{name}] wall {entry['median_wall_s']:.2f} s, peak {entry['median_peak_rss_mb']:.0f}"
            f" MB (runs {walls} s)",
            file=sys.stderr,
            flush=True,
        )
    report["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(f"first run (vtaiwan, caches filled): {first['wall_s']:.2f} s")
    print("| case | runs | wall time (median) | CPU time (median) | peak RSS (median) |")
    print("|---|---|---|---|---|")
    for name, entry in report["cases"].items():
        print(
            f"| {name} | {len(entry['runs'])} | {entry['median_wall_s']:.2f} s "
            f"| {entry['median_cpu_s']:.2f} s "
            f"| {entry['median_peak_rss_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
