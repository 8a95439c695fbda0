"""The Pol.is opinion math on a sparse vote matrix: pure numpy / scipy / scikit-learn / umap.

    >>> result, state = compute(events, n_participants=n, n_statements=m)
    >>> result, state = update(state, new_events)          # incremental

This package imports nothing of the web, storage or worker layers.
"""

from .clustering import Smoother
from .engine import MathResult, compute, recompute, update
from .params import MathParams
from .state import MathState

__all__ = ["MathParams", "MathResult", "MathState", "Smoother", "compute", "recompute", "update"]
