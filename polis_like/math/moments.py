"""Co-vote moments: the PCA's Gram matrix kept up to date vote by vote.

For statements a and b, over the participants who voted on both, keep ``S_ab = sum v_a v_b``,
``T_ab = sum v_a`` and ``N_ab = count``: integers, so an update that removes a participant's old
row and adds the new one gives exactly the arrays a rebuild would. The Gram matrix of the
mean-imputed, centred votes follows from them and the column means:

    G_ab = S_ab - m_b T_ab - m_a T_ba + m_a m_b N_ab        (m_a = T_aa / N_aa)

so a new batch of votes costs the square of each voter's vote count, not a pass over the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _sparse_kernels as kernels
from .matrix import CODE_OFFSET

#: Moments are kept for conversations of at most this many statements (3 arrays of n^2 int32).
MAX_STATEMENTS = 2_000


@dataclass
class Moments:
    """``packed[a, b]`` for a <= b holds (S_ab, N_ab, T_ab, T_ba); shape (n, n, 4), int32."""

    packed: np.ndarray

    @classmethod
    def build(cls, codes: sp.csr_matrix, rows: np.ndarray) -> Moments:
        """The moments of the given participants' votes."""
        size = codes.shape[1]
        moments = cls(np.zeros((size, size, 4), np.int32))
        moments.add(codes, rows, 1)
        return moments

    def add(self, codes: sp.csr_matrix, rows: np.ndarray, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) the rows' votes as they stand in ``codes``."""
        if len(rows):
            kernels.add_moments(
                codes.indptr,
                codes.indices,
                codes.data,
                np.ascontiguousarray(rows, dtype=np.int64),
                sign,
                CODE_OFFSET,
                self.packed,
            )

    def copy(self, size: int) -> Moments:
        """A copy for a matrix of ``size`` statements (the new ones have no votes)."""
        old = self.packed.shape[0]
        bigger = np.zeros((size, size, 4), np.int32)
        bigger[:old, :old] = self.packed
        return Moments(bigger)

    def means(self) -> np.ndarray:
        """Each statement's mean vote over the participants counted (0 where none voted)."""
        diagonal = np.arange(self.packed.shape[0])
        counts = self.packed[diagonal, diagonal, 1].astype(np.float64)
        sums = self.packed[diagonal, diagonal, 2].astype(np.float64)
        return np.divide(sums, counts, out=np.zeros(len(counts)), where=counts > 0)

    def gram(self, columns: np.ndarray) -> np.ndarray:
        """The centred Gram matrix over ``columns``, shape (len(columns), len(columns))."""
        block = self.packed[np.ix_(columns, columns)].astype(np.float64)
        upper = np.triu(np.ones((len(columns), len(columns)), bool))
        s, n = (_symmetric(block[..., i], upper) for i in (0, 1))
        # T_ab for a <= b sits at [a, b, 2]; for a > b it is T_ba's partner at [b, a, 3].
        t = np.where(upper, block[..., 2], block[..., 3].T)
        m = self.means()[columns]
        tm = t * m[None, :]
        return s - tm - tm.T + np.outer(m, m) * n


def _symmetric(values: np.ndarray, upper: np.ndarray) -> np.ndarray:
    upper_part = np.where(upper, values, 0.0)
    return upper_part + upper_part.T - np.diag(np.diag(upper_part))


def update(
    moments: Moments | None,
    old_codes: sp.csr_matrix,
    new_codes: sp.csr_matrix,
    old_rows: np.ndarray,
    new_rows: np.ndarray,
    touched: np.ndarray | None,
) -> Moments | None:
    """The moments of ``new_codes`` over the participants in ``new_rows`` (a bool mask).

    ``moments`` are those of ``old_codes`` over ``old_rows``; only the ``touched`` participants
    (whose votes changed) and those who entered or left ``rows`` are taken out and put back.
    Without previous moments, or with ``touched`` None, they are built afresh. None when the
    conversation has too many statements to keep them. The previous moments are not modified.
    """
    size = new_codes.shape[1]
    if size > MAX_STATEMENTS:
        return None
    if moments is None or touched is None:
        return Moments.build(new_codes, np.flatnonzero(new_rows))
    moments = moments.copy(size)
    was = np.zeros(len(new_rows), bool)
    was[: len(old_rows)] = old_rows
    changed = was != new_rows
    changed[touched] = True
    moments.add(old_codes, np.flatnonzero(changed & was), -1)
    moments.add(new_codes, np.flatnonzero(changed & new_rows), 1)
    return moments
