"""Process-level measurements shared by the benchmark children (standard library only).

Each child measures one call: wall time, the process's peak RSS over its whole life, and the peak
during the call itself (Linux: /proc/self/clear_refs resets the high-water mark just before it).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6  # decimal megabytes throughout, as the targets are stated in GB


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's ``VmRSS`` (or ``VmHWM``, its peak) in MB, from /proc; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux 4.0+); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_process_mb() -> float:
    """The peak RSS of this process over its whole life in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def measure(call: Callable[[], Any]) -> tuple[Any, dict[str, float | None]]:
    """Run ``call`` once: its wall seconds, and the RSS before and at its peak."""
    base = rss_mb()
    exact = reset_peak()
    started = time.perf_counter()
    value = call()
    wall = time.perf_counter() - started
    during = rss_mb("VmHWM") if exact else peak_process_mb()
    return value, {
        "wall_s": wall,
        "base_rss_mb": base,
        "peak_during_mb": during,
        "math_added_mb": None if base is None or during is None else during - base,
        "peak_rss_mb": peak_process_mb(),
        "peak_exact": exact,
    }


def load_case(path: str) -> dict[str, np.ndarray]:
    """The arrays of one prepared case (see scale.py ``prepare``)."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def emit(out_path: str, record: dict[str, Any]) -> None:
    """Write the child's record as JSON where the parent looks for it."""
    Path(out_path).write_text(json.dumps(record))


def fail(out_path: str, exc: BaseException) -> None:
    """Record a failure: ``memory`` for MemoryError, else ``error``; then exit non-zero."""
    status = "memory" if isinstance(exc, MemoryError) else "error"
    emit(
        out_path,
        {
            "status": status,
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "peak_rss_mb": peak_process_mb(),
        },
    )
    sys.exit(3)
