"""The markdown report of a scale benchmark run (see scale.py for the report's structure)."""

from __future__ import annotations

# Known stages in pipeline order; stages an engine reports beyond these get columns of their own.
STAGES = ("matrix", "in_conversation", "moments", "pca", "projection", "clustering", "statistics")
ENGINES = (("ours", "polis-like"), ("reddwarf", "red-dwarf 0.4.0"))

# (case, what, limit, unit): the issue's targets.
TARGETS = (
    ("vtaiwan", "wall_s", 0.1, "s"),
    ("100k", "wall_s", 1.5, "s"),
    ("100k", "peak_rss_mb", 1000.0, "MB"),
    ("1M", "wall_s", 15.0, "s"),
    ("1M", "peak_rss_mb", 3000.0, "MB"),
    ("update", "wall_s", 0.3, "s"),
)
SPEEDUP_TARGET = ("100k", 100.0)


def seconds(x: float | None) -> str:
    """A duration for a table cell."""
    if x is None:
        return "–"
    return f"{x * 1000:.1f} ms" if x < 0.1 else f"{x:.2f} s"


def megabytes(x: float | None) -> str:
    """A memory size for a table cell."""
    if x is None:
        return "–"
    return f"{x / 1000:.2f} GB" if x >= 1000 else f"{x:.0f} MB"


def outcome(runs: list[dict]) -> str:
    """Why the last run of a case did not finish, for a table cell."""
    last = runs[-1]
    peak = megabytes(last.get("child_peak_rss_mb"))
    if last["status"] == "time":
        return f"did not finish (time: stopped after {last['elapsed_s']:.0f} s, peak {peak})"
    if last["status"].startswith("memory"):
        return f"did not finish (memory: peak {peak} after {last['elapsed_s']:.0f} s)"
    return f"failed: {last.get('error', last['status'])}"


def one_line(entry: dict) -> str:
    """A progress line for a case."""
    parts = []
    for key, name in ENGINES:
        if key in entry:
            med = entry[key]["median"]
            parts.append(
                f"{name}: "
                + (
                    f"{seconds(med['wall_s'])}, {megabytes(med['peak_rss_mb'])}"
                    if med
                    else outcome(entry[key]["runs"])
                )
            )
    return "; ".join(parts)


def stage_times(med: dict) -> dict[str, float]:
    """The stages of a median run, with ``other`` = wall time not inside a named stage."""
    times = dict(med["timings"])
    times.setdefault("other", max(med["wall_s"] - sum(times.values()), 0.0))
    return times


def stage_columns(entry: dict) -> list[str]:
    """The stages any engine reported for a case, in pipeline order, ``other`` last."""
    medians = [e["median"] for key, _ in ENGINES if (e := entry.get(key)) and e["median"]]
    seen = [s for med in medians for s in med["timings"]]
    known = [s for s in STAGES if s in seen]
    return known + [s for s in dict.fromkeys(seen) if s not in known and s != "other"] + ["other"]


def case_table(name: str, entry: dict) -> list[str]:
    """The table of one case: a row per engine, a column per stage."""
    votes = next(
        (e["median"]["n_votes"] for k, _ in ENGINES if (e := entry.get(k)) and e["median"]), None
    )
    title = f"### {entry['label']}" + (f" ({votes:,} votes in the matrix)" if votes else "")
    stages = stage_columns(entry)
    head = ["engine", "runs", *stages, "**total**", "peak RSS", "math added", "k", "ARI"]
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in ENGINES:
        if key not in entry:
            continue
        med = entry[key]["median"]
        if med is None:
            lines.append(
                f"| {label} | {len(entry[key]['runs'])} | {outcome(entry[key]['runs'])} |"
                + " |" * (len(head) - 3)
            )
            continue
        times = stage_times(med)
        cells = [
            label,
            str(med["n_runs"]),
            *(seconds(times.get(s)) for s in stages),
            f"**{seconds(med['wall_s'])}**",
            megabytes(med["peak_rss_mb"]),
            megabytes(med["math_added_mb"]),
            str(med["k"]),
            "–" if med.get("ari") is None else f"{med['ari']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def targets(report: dict) -> list[str]:
    """The issue's targets, each met, missed or not measured."""
    lines = ["| target | measured | |", "|---|---|---|"]
    for name, what, limit, unit in TARGETS:
        med = report["cases"].get(name, {}).get("ours", {}).get("median")
        value = med.get(what) if med else None
        shown = seconds(value) if unit == "s" else megabytes(value)
        wanted = f"{name}: {'time' if unit == 's' else 'peak RSS'} <= {limit:g} {unit}"
        verdict = "not measured" if value is None else ("met" if value <= limit else "**missed**")
        lines.append(f"| {wanted} | {shown} | {verdict} |")
    name, factor = SPEEDUP_TARGET
    ratio = speedup(report["cases"].get(name, {}))
    verdict = "not measured" if ratio is None else ("met" if ratio >= factor else "**missed**")
    shown = "–" if ratio is None else f"{ratio:,.0f}x"
    lines.append(f"| {name}: >= {factor:g}x faster than red-dwarf | {shown} | {verdict} |")
    return lines


def speedup(entry: dict) -> float | None:
    """red-dwarf's median wall time over ours, when both finished."""
    ours = (entry.get("ours") or {}).get("median")
    theirs = (entry.get("reddwarf") or {}).get("median")
    return theirs["wall_s"] / ours["wall_s"] if ours and theirs else None


def summary(report: dict) -> list[str]:
    """One row per case: both engines' median wall time, and the ratio."""
    lines = ["| case | polis-like | red-dwarf 0.4.0 | ratio of medians |", "|---|---|---|---|"]
    for entry in report["cases"].values():
        cells = []
        for key, _ in ENGINES:
            run = entry.get(key)
            if run is None:
                cells.append("not run")
            elif run["median"] is None:
                cells.append(outcome(run["runs"]))
            else:
                med = run["median"]
                best = f" (best {seconds(med['best_wall_s'])})" if med["n_runs"] > 1 else ""
                cells.append(seconds(med["wall_s"]) + best)
        ratio = speedup(entry)
        lines.append(
            f"| {entry['label']} | {cells[0]} | {cells[1]} | "
            + ("–" if ratio is None else f"{ratio:,.0f}x")
            + " |"
        )
    return lines


def machine_line(m: dict) -> str:
    """The machine, interpreters and libraries, in one paragraph."""
    text = (
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, Linux {m['kernel']}; "
        f"Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, "
        f"scikit-learn {m['scikit-learn']}."
    )
    rd = m.get("reddwarf_venv")
    if isinstance(rd, dict):
        text += (
            f" red-dwarf {rd['red-dwarf']} in its own venv: Python {rd['python']}, "
            f"pandas {rd['pandas']}, numpy {rd['numpy']}, scikit-learn {rd['scikit-learn']}."
        )
    if m.get("commit"):
        text += f" Commit {m['commit']}."
    load = m.get("load_start"), m.get("load_end")
    if all(load):
        text += f" Load average (1 min) {load[0][0]:.1f} at the start, {load[1][0]:.1f} at the end."
    return text


def markdown(report: dict) -> str:
    """The whole report."""
    lines = [f"Command: `{report['command']}`", "", machine_line(report["machine"]), ""]
    for name, entry in report["cases"].items():
        lines += case_table(name, entry)
    warmups = [
        med["warmup_s"]
        for e in report["cases"].values()
        if (med := e["ours"]["median"]) and med.get("warmup_s") is not None
    ]
    if warmups:
        lines += [
            (
                f"First compute in a fresh process (300 x 40 conversation, after the imports; "
                f"not included above): {seconds(max(warmups))} at most."
            ),
            "",
        ]
    lines += ["Summary (median wall time of the math):", ""] + summary(report) + [""]
    lines += ["Targets:", ""] + targets(report)
    return "\n".join(lines)
