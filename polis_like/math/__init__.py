"""The Pol.is opinion math on a sparse vote matrix: pure numpy / scipy / scikit-learn / umap.

    >>> result, state = compute(events, n_participants=n, n_statements=m)
    >>> result, state = update(state, new_events)          # incremental

This package imports nothing of the web, storage or worker layers. Its names are imported when
first used, so that a command that needs one module of it (say ``polis_like.math.matrix``) does
not pay for the whole pipeline's imports (scipy.linalg, numba's kernels, umap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polis_like._lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)
