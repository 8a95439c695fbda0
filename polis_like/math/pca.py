"""PCA of the implicitly mean-imputed, centred vote matrix, and the sparsity-aware projection.

After imputing each missing cell with its column mean and centring the columns, every missing
cell is exactly 0: the centred matrix has the sparsity of the votes (entry ``v_ij - mean_j``
where participant i voted on j). PCA is then an eigenproblem of the small statements x
statements Gram matrix ``Xc.T @ Xc``, solved exactly, without ever forming the dense
participants x statements matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from . import _sparse_kernels as kernels
from .matrix import CODE_OFFSET
from .moments import Moments

#: Above this many multiply-adds, the Gram matrix is not formed and ARPACK iterates instead.
GRAM_BUDGET = 50_000_000
#: Above this many statements, never form the (dense) Gram matrix.
GRAM_MAX_STATEMENTS = 2_000
#: Up to this size a dense Gram matrix is diagonalised by LAPACK; above, ARPACK iterates on it.
DENSE_LAPACK_MAX = 300


@dataclass
class PCAResult:
    """Components of one PCA, and what the projections need.

    Attributes
    ----------
    codes : csr_matrix of shape (n_participants, n_statements)
        The vote codes the PCA was fitted on.
    active_statements : ndarray of shape (n_statements,), bool
        Statements that shaped the map: voted on, and not moderated out.
    active_participants : ndarray of shape (n_participants,), bool
        Participants in the math (not banned).
    means : ndarray of shape (n_statements,)
        Column means over the active participants' votes (0 where nobody voted).
    components : ndarray of shape (2, n_statements)
        Unit principal axes; zero on inactive statements.
    n_hidden : int
        Moderated-out statements with votes that the projection's scale counts as statements
        everybody voted 0 on (Pol.is's convention; 0 when only visible statements count).
    """

    codes: sp.csr_matrix
    active_statements: np.ndarray
    active_participants: np.ndarray
    means: np.ndarray
    components: np.ndarray
    n_hidden: int = 0

    @property
    def n_active(self) -> int:
        """Number of active statements."""
        return int(self.active_statements.sum())

    def centred(self) -> sp.csr_matrix:
        """The centred matrix on the active cells (made on demand: it costs a copy of the votes)."""
        return centre(
            self.codes,
            active_statements=self.active_statements,
            active_participants=self.active_participants,
            means=self.means,
        )


def column_means(
    codes: sp.csr_matrix, active_participants: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each statement's vote count and mean vote over the active participants."""
    n_cols = codes.shape[1]
    keep = np.repeat(active_participants, np.diff(codes.indptr))
    cols = codes.indices[keep]
    votes = codes.data[keep].astype(np.float64) - CODE_OFFSET
    counts = np.bincount(cols, minlength=n_cols)
    sums = np.bincount(cols, weights=votes, minlength=n_cols)
    return counts, np.divide(sums, counts, out=np.zeros(n_cols), where=counts > 0)


def centre(
    codes: sp.csr_matrix,
    *,
    active_statements: np.ndarray,
    active_participants: np.ndarray,
    means: np.ndarray,
) -> sp.csr_matrix:
    """The centred sparse matrix: ``v_ij - means[j]`` on the active cells, nothing elsewhere."""
    n_rows, n_cols = codes.shape
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(codes.indptr))
    keep = active_statements[codes.indices] & active_participants[rows]
    cols = codes.indices[keep]
    votes = codes.data[keep].astype(np.float64) - CODE_OFFSET
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix((votes - means[cols], cols, indptr), shape=(n_rows, n_cols))


def pca(
    codes: sp.csr_matrix,
    *,
    active_statements: np.ndarray,
    active_participants: np.ndarray,
    previous: np.ndarray | None = None,
    random_state: int = 0,
    moments: Moments | None = None,
    count_hidden: bool = False,
) -> PCAResult:
    """Top two principal components of the mean-imputed, centred vote matrix.

    Parameters
    ----------
    codes : csr_matrix of shape (n_participants, n_statements)
        Latest-vote codes (see ``matrix``).
    active_statements : ndarray of shape (n_statements,), bool
        Statements that may shape the map (not rejected, not meta).
    active_participants : ndarray of shape (n_participants,), bool
        Participants in the math (not banned).
    previous : ndarray of shape (2, n_previous_statements), optional
        The last update's components: they warm-start the solver and fix the signs.
    random_state : int
        Seed of the solver's start vector when there is no ``previous``.
    moments : Moments, optional
        Co-vote moments of the same votes and participants: the Gram matrix is then taken from
        them instead of from a pass over the matrix.
    count_hidden : bool
        Count moderated-out statements with votes in the projection's scale, as Pol.is does
        (it zeroes their columns, missing cells included, and then counts the zeros as votes).
    """
    n_cols = codes.shape[1]
    if moments is not None:
        means = moments.means()
        counts = moments.packed[np.arange(n_cols), np.arange(n_cols), 1]
    else:
        counts, means = column_means(codes, active_participants)
    active = active_statements & (counts > 0)
    components = np.zeros((2, n_cols))
    cols = np.flatnonzero(active)
    if len(cols) > 0:
        v0 = _start(previous, cols, random_state)
        if moments is not None:
            axes = _top_axes_of_gram(moments.gram(cols), v0)
        else:
            centred = centre(
                codes,
                active_statements=active,
                active_participants=active_participants,
                means=means,
            )
            axes = _top_axes(centred[:, cols] if len(cols) < n_cols else centred, v0)
        components[: axes.shape[0], cols] = axes
    components = align_signs(components, previous)
    n_hidden = int(((counts > 0) & ~active_statements).sum()) if count_hidden else 0
    return PCAResult(codes, active, active_participants, means, components, n_hidden)


def _start(previous: np.ndarray | None, cols: np.ndarray, random_state: int) -> np.ndarray:
    if previous is not None:
        grown = np.zeros((2, max(previous.shape[1], cols.max() + 1)))
        grown[:, : previous.shape[1]] = previous
        v0 = grown[0, cols] + 0.5 * grown[1, cols]
        if np.linalg.norm(v0) > 0:
            return v0
    return np.random.default_rng(random_state).uniform(-1.0, 1.0, len(cols))


def _top_axes_of_gram(gram: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """Unit eigenvectors of a dense symmetric matrix for its two largest eigenvalues."""
    n = gram.shape[0]
    if n <= DENSE_LAPACK_MAX:
        wanted = min(2, n)
        _, vectors = scipy.linalg.eigh(gram, subset_by_index=(n - wanted, n - 1))
        return vectors[:, ::-1].T
    from scipy.sparse.linalg import eigsh  # ARPACK: imported only by the large case

    values, vectors = eigsh(gram, k=2, which="LA", v0=v0, tol=1e-10, ncv=min(n, 24))
    return vectors[:, np.argsort(values)[::-1]].T


def _top_axes(centred: sp.csr_matrix, v0: np.ndarray) -> np.ndarray:
    """Unit eigenvectors of ``centred.T @ centred`` for its two largest eigenvalues."""
    n = centred.shape[1]
    row_nnz = np.diff(centred.indptr).astype(np.int64)
    if n <= 3 or (n <= GRAM_MAX_STATEMENTS and int((row_nnz**2).sum()) <= GRAM_BUDGET):
        gram = (centred.T @ centred).toarray()  # statements x statements: small and bounded
        return _top_axes_of_gram(gram, v0)
    from scipy.sparse.linalg import LinearOperator, eigsh  # only the large case iterates

    transpose = centred.T.tocsr()
    op = LinearOperator((n, n), matvec=lambda v: transpose @ (centred @ v), dtype=np.float64)
    values, vectors = eigsh(op, k=2, which="LA", v0=v0, tol=1e-10, ncv=min(n, 24))
    return vectors[:, np.argsort(values)[::-1]].T


def align_signs(components: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Fix each axis's arbitrary sign so that the map does not flip between updates.

    With a previous update, each axis points the way its predecessor did; the first time, the
    statement with the largest loading (the first such one) gets a positive loading.
    """
    aligned = components.copy()
    for axis in range(aligned.shape[0]):
        vector = aligned[axis]
        sign = 0.0
        if previous is not None and axis < previous.shape[0]:
            shared = min(previous.shape[1], vector.shape[0])
            sign = np.sign(vector[:shared] @ previous[axis, :shared])
        if sign == 0.0 and vector.any():
            sign = np.sign(vector[np.argmax(np.abs(vector))])
        if sign < 0:
            aligned[axis] = -vector
    return aligned


def project_participants(result: PCAResult) -> np.ndarray:
    """Sparsity-aware 2-D positions of every participant, shape (n_participants, 2).

    ``sqrt(n_active / max(|V_i|, 1)) * sum_j (v_ij - mean_j) * pc_j``: the square-root factor
    places a participant who voted little as if they had voted on everything in the same spirit.
    ``|V_i|`` counts only the active statements the participant voted on (with ``n_hidden``,
    both counts include the hidden statements, as in Pol.is).
    """
    codes = result.codes
    raw, counts = kernels.project(
        codes.indptr,
        codes.indices,
        codes.data,
        CODE_OFFSET,
        result.active_participants,
        result.active_statements,
        result.means,
        np.ascontiguousarray(result.components),
    )
    return raw * _scale(result, counts)[:, None]


def sparsity_scale(result: PCAResult) -> np.ndarray:
    """Each participant's factor ``sqrt(n_active / max(|V_i|, 1))``, shape (n_participants,)."""
    active = result.active_statements[result.codes.indices]
    rows = np.repeat(np.arange(result.codes.shape[0]), np.diff(result.codes.indptr))
    counts = np.bincount(rows[active], minlength=result.codes.shape[0])
    return _scale(result, counts)


def _scale(result: PCAResult, counts: np.ndarray) -> np.ndarray:
    hidden = result.n_hidden
    return np.sqrt((result.n_active + hidden) / np.maximum(counts + hidden, 1))


def project_statements(result: PCAResult) -> tuple[np.ndarray, np.ndarray]:
    """Each statement as a synthetic participant who agreed with it alone, and its extremity.

    Returns
    -------
    positions : ndarray of shape (n_statements, 2)
    extremity : ndarray of shape (n_statements,)
        The length of the statement's position; 0 for inactive statements.
    """
    weight = np.sqrt(result.n_active + result.n_hidden) * (1.0 - result.means)
    positions = (result.components * weight).T
    return positions, np.linalg.norm(positions, axis=1)
