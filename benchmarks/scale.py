"""Scale benchmark: time and measure the math on synthetic conversations, beside red-dwarf.

    python benchmarks/scale.py                                  # every case, 3 runs each
    python benchmarks/scale.py --sizes 10k,100k --repeat 5 --out results.json
    python benchmarks/scale.py --with-reddwarf --repeat-1m 1    # creates benchmarks/.venv-reddwarf

Every run is a fresh child process (ours_run.py, or reddwarf_run.py in red-dwarf's own venv)
with a time limit and a memory limit (RLIMIT_AS, plus the parent killing it past the RSS limit or
when the machine runs short of memory), so that a case that cannot finish is reported instead of
hanging. Prints a markdown report; ``--out`` keeps every raw run as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cases
import scale_report

HERE = Path(__file__).resolve().parent
REDDWARF_VENV = HERE / ".venv-reddwarf"
REDDWARF_REQUIREMENT = "red-dwarf==0.4.0"
MB = 1e6
MACHINE_RESERVE_MB = 1_500  # kill a child when the machine has less than this available


def main(argv: list[str] | None = None) -> None:
    """Run the requested cases and print the report."""
    args = _parser().parse_args(argv)
    names = [n.strip() for n in args.sizes.split(",") if n.strip()]
    unknown = [n for n in names if n not in cases.CASES]
    if unknown:
        sys.exit(f"unknown size {unknown[0]!r}; choose among {', '.join(cases.CASES)}")
    reddwarf_python = _reddwarf_venv() if args.with_reddwarf else None
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": machine_info(reddwarf_python),
        "cases": {},
    }
    limits = dict(timeout_s=args.timeout, memory_mb=args.memory_limit_gb * 1000)
    for name in names:
        case = cases.CASES[name]
        data = cases.prepare(case, args.cache_dir.resolve(), args.votes_per_participant, args.seed)
        repeat = args.repeat_1m if (name == "1M" and args.repeat_1m) else args.repeat
        entry = {"label": case.label, "ours": _repeat(_ours_argv(data, case, args), repeat, limits)}
        if reddwarf_python and not case.new_votes:
            argv_rd = [str(reddwarf_python), str(HERE / "reddwarf_run.py"), str(data)]
            entry["reddwarf"] = _repeat(argv_rd, repeat, limits, give_up_after_s=args.reddwarf_slow)
        report["cases"][name] = entry
        print(f"[{name}] {scale_report.one_line(entry)}", file=sys.stderr, flush=True)
    report["machine"]["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(scale_report.markdown(report))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--sizes",
        default=",".join(cases.CASES),
        help=f"comma-separated cases among {', '.join(cases.CASES)} (default: all)",
    )
    add("--repeat", type=int, default=3, help="runs per case; the report shows medians")
    add("--repeat-1m", type=int, default=0, help="runs of the 1M case if not --repeat (e.g. 1)")
    add(
        "--with-reddwarf",
        action="store_true",
        help=f"also run {REDDWARF_REQUIREMENT} (installed into {REDDWARF_VENV.name})",
    )
    add(
        "--reddwarf-slow",
        type=float,
        default=300.0,
        help="skip red-dwarf's remaining runs of a case after one takes this many seconds",
    )
    add("--timeout", type=float, default=900.0, help="seconds per run (default 15 min)")
    add("--memory-limit-gb", type=float, default=20.0, help="per run (address space and RSS)")
    add("--votes-per-participant", type=int, default=30)
    add("--seed", type=int, default=0)
    add(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polis-like-bench",
        help="where the prepared conversations are kept between runs",
    )
    add("--out", type=Path, help="write the raw results as JSON")
    return parser


def _ours_argv(data: Path, case: cases.Case, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, str(HERE / "ours_run.py"), str(data)]
    return argv + (["--new-votes", str(case.new_votes)] if case.new_votes else [])


def _repeat(
    argv: list[str], repeat: int, limits: dict, give_up_after_s: float = float("inf")
) -> dict:
    """Run a child ``repeat`` times (stopping at a failure or a very slow run); runs and medians."""
    runs = []
    for _ in range(repeat):
        runs.append(run_child(argv, **limits))
        if runs[-1]["status"] != "ok" or runs[-1]["wall_s"] > give_up_after_s:
            break
    return {"runs": runs, "median": median_run(runs)}


def run_child(argv: list[str], timeout_s: float, memory_mb: float) -> dict:
    """Run one child with the limits; its record, or why it did not finish."""
    limit = int(memory_mb * MB)

    def set_limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out, log = Path(tmp) / "out.json", Path(tmp) / "log.txt"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                argv + [str(out)],
                stdout=log_file,
                stderr=log_file,
                # the parent runs no threads, so preexec_fn is safe here
                preexec_fn=set_limits,  # noqa: PLW1509
                start_new_session=True,
                cwd=HERE,
            )
            started, killed = time.monotonic(), None
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                killed = killed or _over_limit(proc.pid, started, timeout_s, memory_mb)
                if killed:
                    os.killpg(proc.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.1)
            proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        record = json.loads(out.read_text()) if out.exists() else {}
        if killed:
            record = {"status": killed}
        elif not record:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            memoryish = proc.returncode == -signal.SIGKILL or any("MemoryError" in t for t in tail)
            record = {
                "status": "memory" if memoryish else "error",
                "error": " | ".join(tail)[-500:],
            }
    record.update(
        child_peak_rss_mb=usage.ru_maxrss * 1024 / MB, elapsed_s=elapsed, load_before=load
    )
    return record


def _over_limit(pid: int, started: float, timeout_s: float, memory_mb: float) -> str | None:
    """``time`` or ``memory`` when the child must be stopped, else None."""
    if time.monotonic() - started > timeout_s:
        return "time"
    rss = _proc_kb(f"/proc/{pid}/status", "VmRSS")
    available = _proc_kb("/proc/meminfo", "MemAvailable")
    if rss is not None and rss * 1024 / MB > memory_mb:
        return "memory"
    if available is not None and available * 1024 / MB < MACHINE_RESERVE_MB:
        return "memory (machine short of memory)"
    return None


def _proc_kb(path: str, field: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def median_run(runs: list[dict]) -> dict | None:
    """Per-field medians over the successful runs (stages separately), or None if none succeeded."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return None
    med = {"n_runs": len(ok)}
    for key in (
        "wall_s",
        "engine_total_s",
        "peak_rss_mb",
        "math_added_mb",
        "base_rss_mb",
        "ari",
        "warmup_s",
    ):
        values = [r[key] for r in ok if r.get(key) is not None]
        med[key] = statistics.median(values) if values else None
    med["best_wall_s"] = min(r["wall_s"] for r in ok)
    for key in ("k", "n_votes", "n_clustered"):
        med[key] = ok[0].get(key)
    stages = dict.fromkeys(s for r in ok for s in r.get("timings", {}))
    med["timings"] = {s: statistics.median(r["timings"].get(s, 0.0) for r in ok) for s in stages}
    return med


def _reddwarf_venv() -> Path:
    """The python of benchmarks/.venv-reddwarf, created with red-dwarf 0.4.0 if missing."""
    python = REDDWARF_VENV / "bin" / "python"
    wanted = REDDWARF_REQUIREMENT.split("==")[1]
    probe = "from importlib.metadata import version; print(version('red-dwarf'))"
    check = [str(python), "-c", probe]
    if python.exists():
        probed = subprocess.run(check, capture_output=True, text=True, check=False)
        if probed.stdout.strip() == wanted:
            return python
    print(f"creating {REDDWARF_VENV} with {REDDWARF_REQUIREMENT} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(REDDWARF_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", REDDWARF_REQUIREMENT]
    subprocess.run(pip, check=True)
    return python


def _commit() -> str:
    """The checkout's commit, ``+dirty`` when polis_like/ or benchmarks/ has local changes."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "../polis_like", ".")
    return commit + ("+dirty" if dirty else "")


def machine_info(reddwarf_python: Path | None) -> dict:
    """What the figures depend on: CPU, memory, interpreter and library versions, load."""
    import numpy
    import scipy
    import sklearn

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor(),
    )
    info = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gb": round((_proc_kb("/proc/meminfo", "MemTotal") or 0) * 1024 / 1e9, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "kernel": platform.release(),
        "load_start": os.getloadavg(),
        "commit": _commit(),
    }
    if reddwarf_python:
        script = (
            "import json, platform; from importlib.metadata import version as v; "
            "print(json.dumps({'python': platform.python_version(), **{p: v(p) for p in "
            "('red-dwarf', 'pandas', 'numpy', 'scikit-learn')}}))"
        )
        out = subprocess.run(
            [str(reddwarf_python), "-c", script], capture_output=True, text=True, check=False
        )
        info["reddwarf_venv"] = json.loads(out.stdout) if out.returncode == 0 else out.stderr[-300:]
    return info


if __name__ == "__main__":
    main()
