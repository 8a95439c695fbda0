"""Compiled passes over the CSR vote matrix (numba; serial, so deterministic)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def tally(indptr: np.ndarray, indices: np.ndarray, codes: np.ndarray, labels: np.ndarray,
          n_groups: int, n_cols: int, agree_code: int, disagree_code: int):
    """Agree, disagree and seen counts per (label, column); rows labelled -1 are skipped."""
    agree = np.zeros((n_groups, n_cols), np.int64)
    disagree = np.zeros((n_groups, n_cols), np.int64)
    seen = np.zeros((n_groups, n_cols), np.int64)
    for i in range(indptr.shape[0] - 1):
        g = labels[i]
        if g < 0:
            continue
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            seen[g, j] += 1
            if codes[p] == agree_code:
                agree[g, j] += 1
            elif codes[p] == disagree_code:
                disagree[g, j] += 1
    return agree, disagree, seen
