"""The Pol.is opinion math on a sparse vote matrix: pure numpy / scipy / scikit-learn / umap.

    >>> result, state = compute(events, n_participants=n, n_statements=m)
    >>> result, state = update(state, new_events)          # incremental

This package imports nothing of the web, storage or worker layers. Its names are imported when
first used, so that a command that needs one module of it (say ``polis_like.math.matrix``) does
not pay for the whole pipeline's imports (scipy.linalg, numba's kernels, umap).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clustering import Smoother
    from .engine import MathResult, compute, recompute, update
    from .params import MathParams
    from .state import MathState

__all__ = ["MathParams", "MathResult", "MathState", "Smoother", "compute", "recompute", "update"]

#: Where each public name lives.
_HOMES = {
    "MathParams": "params",
    "MathResult": "engine",
    "MathState": "state",
    "Smoother": "clustering",
    "compute": "engine",
    "recompute": "engine",
    "update": "engine",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
